"""The circuit breakers' trips in the request log (`TripLog`, the `breaker_trips` table), on
each backend: a trip written and closed is read back, a closing is never undone by its opening
landing later, each deployment keeps its newest trips, `log keep` prunes them, and a
`TripHistory` over the log writes only its own trips and is seeded from the log's, news of a
trip already read not listed twice. Then the migrations from the schema before."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from taskroute.calling.breaker import CircuitBreaker, TripHistory
from taskroute.records import Trip
from taskroute.router import Router
from taskroute.store.base import TripLog
from taskroute.store.trips import KEPT_PER_DEPLOYMENT, trip_row
from tests.calling.support import MemoryStore
from tests.servers import PostgresCluster
from tests.store.conftest import StoreFactory
from tests.store.test_postgres import wait_for
from tests.store.test_sqlite import make_entry, rows

DAY = 86400.0


def a_trip(deployment: str = "openai/gpt-4.1-mini", opened_at: float | None = None, *,
           replica: str = "host-a:101", reason: str = "HTTP 503: overloaded") -> Trip:
    opened = time.time() if opened_at is None else opened_at
    return Trip(deployment, opened, reason, opened + 30.0, id=uuid.uuid4().hex,
                replica=replica)


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


async def test_a_trip_written_and_closed_is_read_back_newest_first(log_store: Any) -> None:
    assert isinstance(log_store, TripLog)
    assert await log_store.recent_trips(10) == []
    trip = a_trip(opened_at=time.time() - 100)
    log_store.add_trip(trip)
    assert await log_store.recent_trips(10) == [trip]   # queued a moment ago: read all the same
    trip.closed_at = trip.opened_at + 31.5               # its probe succeeded: the row updated
    log_store.add_trip(trip)
    later = a_trip("anthropic/claude-haiku", trip.opened_at + 60, replica="host-b:7")
    log_store.add_trip(later)
    got = await log_store.recent_trips(10)
    assert got == [later, trip] and got[1].closed_at == trip.opened_at + 31.5
    assert await log_store.recent_trips(1) == [later]


async def test_a_closing_is_kept_whatever_order_the_writes_land_in(log_store: Any) -> None:
    trip = a_trip()
    closed = replace(trip, closed_at=trip.opened_at + 40)
    log_store.add_trip(closed)
    log_store.add_trip(trip)             # one batch: the opening after its closing
    assert await log_store.recent_trips(5) == [closed]
    log_store.add_trip(trip)             # a later batch (a spool replaying the opening late)
    assert await log_store.recent_trips(5) == [closed]


async def test_each_deployment_keeps_its_newest_trips(log_store: Any) -> None:
    start = time.time() - 10_000
    for i in range(KEPT_PER_DEPLOYMENT + 5):
        log_store.add_trip(a_trip("openai/flapping", start + i))
    await log_store.flush()
    for i in range(3):                   # another deployment's, and older: kept
        log_store.add_trip(a_trip("openai/steady", start - 100 + i))
    log_store.add_trip(a_trip("openai/flapping", start + 1000))  # one more: the oldest goes
    got = await log_store.recent_trips(1000)
    flapping = sorted(t.opened_at for t in got if t.deployment == "openai/flapping")
    assert len(flapping) == KEPT_PER_DEPLOYMENT and flapping[0] == start + 6
    assert len([t for t in got if t.deployment == "openai/steady"]) == 3


async def test_log_keep_prunes_old_trips(log_store: Any) -> None:
    old, new = a_trip(opened_at=time.time() - 40 * DAY), a_trip()
    log_store.add_trip(old)
    log_store.add_trip(new)
    await log_store.flush()
    assert await log_store.prune(time.time() - 30 * DAY, 10) == 1
    assert await log_store.prune(time.time() - 30 * DAY, 10) == 0
    assert await log_store.recent_trips(10) == [new]


async def test_a_history_writes_its_own_trips_and_a_new_one_is_seeded_with_them(
    log_store: Any,
) -> None:
    first = TripHistory(log=log_store, replica="host-a:101")
    assert first.persisted
    breaker = CircuitBreaker(failures=1, cooldown_s=0.0, deployment="openai/x", trips=first)
    breaker.failure("HTTP 503: overloaded")
    first.heard("openai/y", 30.0)        # another replica's trip: that replica writes it
    assert breaker.allow()               # cool-down over: the probe goes, and succeeds
    breaker.success()
    (closed,) = [t for t in first.recent() if t.by == "here"]
    assert closed.closed_at is not None

    restarted = TripHistory(log=log_store, replica="host-a:101")   # the same process's name
    assert await restarted.load() == 1
    assert restarted.recent() == [closed]
    later = TripHistory(log=log_store, replica="host-b:7")         # a replica started later
    assert await later.load() == 1
    (seen,) = later.recent()
    assert (seen.id, seen.by, seen.replica, seen.reason, seen.closed_at) == (
        closed.id, "replica", "host-a:101", "failed: HTTP 503: overloaded", closed.closed_at)
    assert await later.load() == 0       # loading again adds nothing


async def test_news_of_a_trip_read_from_the_log_is_not_listed_twice(log_store: Any) -> None:
    clock = Clock(1_000_000.0)
    tripped = TripHistory(log=log_store, replica="a", wall=clock)
    tripped.opened("openai/x", "failed: HTTP 503", 60.0)
    clock.now += 5.0

    read_first = TripHistory(log=log_store, replica="b", wall=clock)
    assert await read_first.load() == 1
    read_first.heard("openai/x", 55.0)   # the open breaker, found when it connected
    assert [(t.reason, t.by, t.replica) for t in read_first.recent()] == [
        ("failed: HTTP 503", "replica", "a")]

    heard_first = TripHistory(log=log_store, replica="c", wall=clock)
    heard_first.heard("openai/x", 55.0)
    heard_first.heard("openai/other", 55.0)   # news of another deployment stays
    assert await heard_first.load() == 1
    assert [(t.deployment, t.reason) for t in heard_first.recent()] == [
        ("openai/other", "opened by another replica"), ("openai/x", "failed: HTTP 503")]

    restarted = TripHistory(log=log_store, replica="a", wall=clock)  # its own, from before
    assert await restarted.load() == 1
    restarted.heard("openai/x", 55.0)     # the breaker it left open in shared state
    assert [(t.by, t.reason) for t in restarted.recent()] == [("here", "failed: HTTP 503")]

    clock.now += 120.0                    # past its cool-down: a new trip is news
    read_first.heard("openai/x", 60.0)
    assert [t.reason for t in read_first.recent()] == [
        "opened by another replica", "failed: HTTP 503"]
    assert [t.id for t in await log_store.recent_trips(10)] == [tripped.recent()[0].id]


async def test_without_a_log_the_history_is_memory_only() -> None:
    trips = TripHistory()
    trips.opened("openai/x", "failed", 30.0)
    assert not trips.persisted and await trips.load() == 0 and len(trips.recent()) == 1
    assert not Router.default(classifier=False).trips.persisted
    assert not Router.default(classifier=False, store=MemoryStore()).trips.persisted  # no table


async def test_a_router_on_the_log_keeps_its_trips_there(tmp_path: Path) -> None:
    from taskroute.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "log.db")
    try:
        router = Router.default(classifier=False, store=store)
        assert router.trips.persisted and router.with_policy(router.policy).trips is router.trips
        router.trips.opened("openai/x", "failed", 30.0)
        assert [t.deployment for t in await store.recent_trips(5)] == ["openai/x"]
    finally:
        await store.aclose()


async def test_a_closed_log_does_not_fail_the_call_that_tripped(tmp_path: Path) -> None:
    from taskroute.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "log.db")
    await store.aclose()                 # a retired router's call, ending after shutdown
    trips = TripHistory(log=store)
    CircuitBreaker(failures=1, cooldown_s=30.0, deployment="openai/x", trips=trips).failure(
        "HTTP 503")
    assert [t.deployment for t in trips.recent()] == ["openai/x"]


async def test_two_replicas_on_one_postgres_log_write_a_trip_once(
    open_pg: StoreFactory, tmp_path: Path,
) -> None:
    one, two = open_pg(spool_dir=tmp_path / "one"), open_pg(spool_dir=tmp_path / "two")
    a = TripHistory(log=one, replica="a")
    b = TripHistory(log=two, replica="b")
    a.opened("openai/x", "failed: HTTP 500", 30.0)
    b.heard("openai/x", 30.0)            # the news, as shared state brings it
    await asyncio.gather(one.flush(), two.flush())
    third = TripHistory(log=open_pg(spool_dir=tmp_path / "three"), replica="c")
    assert await third.load() == 1
    assert [(t.reason, t.replica) for t in third.recent()] == [("failed: HTTP 500", "a")]


async def test_a_spooled_closing_replayed_after_its_opening_keeps_the_trip_closed(
    open_pg: StoreFactory, tmp_path: Path,
) -> None:
    from taskroute.store.postgres_spool import Spool

    trip = a_trip()
    spool = Spool(tmp_path / "spool")    # a process died with the closing spooled
    spool.append([("t", list(trip_row(replace(trip, closed_at=trip.opened_at + 9))), [])])
    spool.close()
    store = open_pg(interval_s=3600)
    store.add_trip(trip)
    await store.flush()
    await wait_for(lambda: not store.spool.has_any())
    assert [t.closed_at for t in await store.recent_trips(5)] == [trip.opened_at + 9]


async def test_a_sqlite_log_from_before_0014_migrates_and_keeps_its_requests(
    tmp_path: Path,
) -> None:
    from taskroute.store.migrations import migrate
    from taskroute.store.sqlite import REQUEST_COLUMNS, SqliteStore, connect, request_row

    path = tmp_path / "log.db"
    conn = connect(path)
    assert migrate(conn, upto="0013_feedback_task")[-1] == "0013_feedback_task"
    conn.execute(f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})", request_row(
                     make_entry("old")))
    conn.close()
    store = SqliteStore(path)
    trip = a_trip()
    store.add_trip(trip)
    assert await store.recent_trips(5) == [trip]
    assert [r.request_id for r in await store.request_routes(["old"])] == ["old"]
    await store.aclose()
    assert rows(path, "SELECT name FROM schema_migrations ORDER BY rowid")[-1] == (
        "0014_breaker_trips",)
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]


async def test_a_postgres_log_from_before_0009_migrates_and_keeps_its_requests(
    postgres_cluster: PostgresCluster, pg_url: str, open_pg: StoreFactory,
) -> None:
    import asyncpg

    from taskroute.store.postgres_migrations import migrate
    from taskroute.store.sqlite import REQUEST_COLUMNS, request_row

    conn = await asyncpg.connect(pg_url)
    try:
        assert (await migrate(conn, upto="0008_feedback_task"))[-1] == "0008_feedback_task"
        await conn.copy_records_to_table("requests", records=[request_row(make_entry("old"))],
                                         columns=list(REQUEST_COLUMNS))
    finally:
        await conn.close()
    store = open_pg()                    # migrates to 0009
    trip = a_trip()
    store.add_trip(trip)
    assert await store.recent_trips(5) == [trip]
    assert [r.request_id for r in await store.request_routes(["old"])] == ["old"]
    names = postgres_cluster.psql(pg_url.rsplit("/", 1)[1],
                                  "SELECT name FROM schema_migrations ORDER BY seq")
    assert names.split()[-2:] == ["0008_feedback_task", "0009_breaker_trips"]
