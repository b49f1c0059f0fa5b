"""A private redis-server for the shared-state tests (skipped, saying how to install it, where
there is none); every test starts from an empty database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import REDIS_INSTALL, RedisServer, redis_available
from tests.store.conftest import postgres_cluster  # noqa: F401  (the Postgres tests' cluster)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip(REDIS_INSTALL)
    pytest.importorskip("redis", reason="pip install 'taskroute[redis]'")
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, pause and restart."""
    if not redis_available():
        pytest.skip(REDIS_INSTALL)
    pytest.importorskip("redis", reason="pip install 'taskroute[redis]'")
    with RedisServer() as started:
        yield started
