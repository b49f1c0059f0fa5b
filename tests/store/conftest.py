"""The store tests' servers: one private PostgreSQL cluster for the session (skipped, saying how
to install it, where there is none), a fresh database per test, and `log_store`, each
backend in turn for the tests that hold for every `Store` and `LogReader`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import PostgresCluster

StoreFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    pytest.importorskip("asyncpg", reason="the postgres extra: pip install 'taskroute[postgres]'")
    with PostgresCluster.started() as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database in the session's cluster."""
    return postgres_cluster.new_database()


@pytest.fixture
def open_pg(pg_url: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens `PostgresStore`s on this test's database (each with this test's spool unless
    told otherwise); whatever a test leaves open is closed after it."""
    from taskroute.store.postgres import PostgresStore

    opened: list[PostgresStore] = []

    def open_store(**options: Any) -> PostgresStore:
        options.setdefault("spool_dir", tmp_path / "spool")
        store = PostgresStore(options.pop("url", pg_url), **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Each backend in turn, blank, its writer writing only when flushed."""
    if request.param == "sqlite":
        from taskroute.store.sqlite import SqliteStore

        store: Any = SqliteStore(tmp_path / "log.db", interval_s=3600)
    else:
        store = request.getfixturevalue("open_pg")(interval_s=3600)
    yield store
    await store.aclose()
