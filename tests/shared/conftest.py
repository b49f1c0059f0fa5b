"""A private redis-server for the shared-state tests (skipped, saying how to install it, where
there is none); every test starts from an empty database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import REDIS_INSTALL, PostgresCluster, RedisServer, redis_available


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


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    pytest.importorskip("asyncpg", reason="the postgres extra: pip install 'taskroute[postgres]'")
    with PostgresCluster.started() as cluster:
        yield cluster


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, pause and restart."""
    if not redis_available():
        pytest.skip(REDIS_INSTALL)
    pytest.importorskip("redis", reason="pip install 'taskroute[redis]'")
    with RedisServer() as started:
        yield started
