"""`SqliteStore` as a `LogReader`: every read on a real file, blank and migrated from each earlier
schema; feedback; shadow decisions written by the writer thread; reads kept off the loop."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskroute.exceptions import DuplicateFeedback, InvalidRequest, UnknownRequest
from taskroute.policy.model import Price
from taskroute.quality.feedback import make_feedback
from taskroute.store import LogReader, RatedAnswer, SqliteStore, Store, give_feedback, sqlite
from taskroute.store.migrations import MIGRATIONS, migrate
from taskroute.store.sqlite import REQUEST_COLUMNS, attempt_rows, connect, request_row
from tests.quality.logbook import Logbook
from tests.store.test_sqlite import a_decision, make_entry, rows

PRICE = Price(input=2.0, output=8.0)
STRONG = "anthropic/claude-opus-4-5"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "log.db")
    yield opened
    await opened.aclose()


async def every_read(reader: LogReader, request_ids: list[str]) -> dict[str, Any]:
    """Each read of the Protocol once (feedback apart)."""
    return {
        "stats": await reader.route_stats(since_s=None),
        "timeseries": await reader.timeseries(since_s=None, baseline_model=STRONG,
                                              baseline_price=PRICE),
        "ab": await reader.ab_report(since_s=None, variants=["A", "B"]),
        "spend": await reader.spend_today(),
        "catch_up": await reader.catch_up(),
        "rated": await reader.rated_answers(),
        "routes": await reader.request_routes(request_ids),
    }


async def test_implements_both_protocols(store: SqliteStore) -> None:
    writer: Store = store     # mypy checks both Protocols here
    reader: LogReader = store
    assert isinstance(writer, LogReader) and isinstance(reader, SqliteStore)
    assert not isinstance(object(), LogReader)


async def test_every_read_of_a_blank_log_is_empty(store: SqliteStore) -> None:
    got = await every_read(store, ["req-none"])
    assert got["stats"]["rows"] == [] and got["stats"]["total"]["requests"] == 0
    assert got["timeseries"] == {"baseline_model": STRONG, "points": [], "cost_usd": 0.0,
                                 "baseline_usd": 0.0, "step": "hour", "step_s": 3600}
    assert got["ab"]["comparisons"] == [] and got["ab"]["variants"] == []
    assert got["spend"] == {("day", ""): 0.0}
    assert got["catch_up"] == 0 and got["rated"] == [] and got["routes"] == []
    with pytest.raises(UnknownRequest, match="req-none"):
        await store.add_feedback(make_feedback("req-none", thumbs="up"))


@pytest.mark.parametrize("previous", [name for name, _ in MIGRATIONS[:-1]])
async def test_reads_a_log_migrated_from_an_earlier_schema(tmp_path: Path, previous: str) -> None:
    path = tmp_path / "log.db"
    conn = connect(path)
    migrate(conn, upto=previous)
    entry = replace(make_entry("old", escalate=True), prompt="Summarize: owls.", answer="Owls.")
    existing = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
    old = dict(zip(REQUEST_COLUMNS, request_row(entry), strict=True))
    conn.execute(f"INSERT INTO requests ({', '.join(existing)}) "
                 f"VALUES ({', '.join('?' * len(existing))})", [old[c] for c in existing])
    attempt_columns = len(list(conn.execute("PRAGMA table_info(attempts)")))
    conn.executemany(f"INSERT INTO attempts VALUES ({', '.join('?' * attempt_columns)})",
                     [row[:attempt_columns] for row in attempt_rows(entry)])
    conn.close()

    store = SqliteStore(path)
    try:
        await store.add_feedback(make_feedback("old", score=0.5, corrected=True), key_id="k9")
        got = await every_read(store, ["old", "missing"])
    finally:
        await store.aclose()
    (row,) = got["stats"]["rows"]
    assert row["requests"] == 1 and row["escalation"] == 1.0 and row["under_served"] == 1.0
    assert row["feedback"] == 1 and row["correction"] == 1.0
    (point,) = got["timeseries"]["points"]
    assert point["requests"] == 1 and point["cost_usd"] == pytest.approx(0.011)
    assert point["baseline_usd"] == pytest.approx((10 * 2.0 + 6 * 8.0) / 1e6)  # per attempt
    assert got["ab"]["variants"] == []                                        # no variant then
    assert got["spend"] == pytest.approx({("user", "u1"): 0.011, ("key", "k1"): 0.011,
                                          ("day", ""): 0.011})
    assert got["rated"] == [RatedAnswer(
        prompt="Summarize: owls.", model=entry.record.decision.chain[1], score=0.5,
        corrected=True, cost_usd=pytest.approx(0.011), latency_s=0.6,  # type: ignore[arg-type]
        task=entry.record.decision.task, answer="Owls.")]
    (route,) = got["routes"]
    assert (route.request_id, route.escalated, route.input_tokens) == ("old", True, 20)


async def test_time_series_sums_whole_hours_against_the_baseline(tmp_path: Path) -> None:
    now = time.time()
    base = (int(now // 3600) - 3) * 3600.0
    book = Logbook(tmp_path / "log.db")
    for ts in (base + 60, base + 120, base + 3660):
        book.add(ts=ts, tokens=(100, 50))
    reader = await book.reader()
    try:
        every = await reader.timeseries(since_s=None, baseline_model=STRONG, baseline_price=PRICE,
                                        now=now)
        later = await reader.timeseries(since_s=now - (base + 3630), baseline_model=STRONG,
                                        baseline_price=PRICE, now=now)
    finally:
        book.close()
    each = (100 * 2.0 + 50 * 8.0) / 1e6
    assert [(p["hour"], p["requests"]) for p in every["points"]] == [(base, 2),
                                                                     (base + 3600, 1)]
    assert every["points"][0]["baseline_usd"] == pytest.approx(2 * each)
    assert every["cost_usd"] == pytest.approx(0.003)
    assert every["baseline_usd"] == pytest.approx(3 * each)
    assert [p["hour"] for p in later["points"]] == [base + 3600]  # from the window's hour on


async def test_feedback_counts_once_even_before_its_request_is_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db", interval_s=3600)  # the writer only writes on flush
    try:
        store.add(make_entry("r1"))
        await store.add_feedback(make_feedback("r1", thumbs="down", text="wrong"), key_id="k2")
        with pytest.raises(DuplicateFeedback, match="already has feedback"):
            await store.add_feedback(make_feedback("r1", thumbs="up"))
        with pytest.raises(UnknownRequest):
            await store.add_feedback(make_feedback("r2", thumbs="up"))
    finally:
        await store.aclose()
    assert rows(tmp_path / "log.db", "SELECT request_id, score, text, api_key_id FROM feedback"
                ) == [("r1", 0.0, "wrong", "k2")]


async def test_request_routes_finds_each_of_many_ids(store: SqliteStore) -> None:
    ids = [f"r{i}" for i in range(1200)]     # more than one IN (...) can bind at a time
    for request_id in ids:
        store.add(make_entry(request_id))
    await store.flush()
    found = await store.request_routes([*ids, "nope", "r1"])
    assert sorted(r.request_id for r in found) == sorted(ids)


async def test_shadow_decisions_are_written_by_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def spy(shadow: sqlite.Shadow) -> tuple[Any, ...]:
        threads.append(threading.current_thread().name)
        return real(shadow)

    real = sqlite.shadow_row
    monkeypatch.setattr(sqlite, "shadow_row", spy)
    db = tmp_path / "log.db"
    store = SqliteStore(db, interval_s=3600)
    decision = replace(a_decision(), policy="candidate", tier="strong", model=STRONG)
    store.add_shadow("r1", decision)
    assert rows(db, "SELECT count(*) FROM shadow_decisions") == [(0,)]   # queued, not written
    await store.flush()
    assert rows(db, "SELECT request_id, policy, tier, model FROM shadow_decisions") == [
        ("r1", "candidate", "strong", STRONG)]
    (saved,) = rows(db, "SELECT decision FROM shadow_decisions")[0]
    assert json.loads(str(saved))["reasons"] == list(decision.reasons)
    assert threads == ["taskroute-store"]
    await store.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        store.add_shadow("r2", decision)


async def test_reads_never_run_on_the_event_loop_thread(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add(make_entry("r1"))
    await store.flush()
    ran_on: list[int] = []

    def traced(path: str | Path) -> sqlite3.Connection:  # the reader's connection, when opened
        conn = connect(path)
        conn.set_trace_callback(lambda _sql: ran_on.append(threading.get_ident()))
        return conn

    monkeypatch.setattr(sqlite, "connect", traced)
    loop_thread = threading.get_ident()
    reads: dict[str, Callable[[], Awaitable[object]]] = {
        "route_stats": lambda: store.route_stats(since_s=None),
        "timeseries": lambda: store.timeseries(since_s=None, baseline_model=STRONG,
                                               baseline_price=PRICE),
        "ab_report": lambda: store.ab_report(since_s=None),
        "add_feedback": lambda: store.add_feedback(make_feedback("r1", thumbs="up")),
        "spend_today": lambda: store.spend_today(),
        "catch_up": lambda: store.catch_up(),
        "rated_answers": lambda: store.rated_answers(),
        "request_routes": lambda: store.request_routes(["r1"]),
    }
    for name, read in reads.items():
        ran_on.clear()
        await read()
        assert ran_on, f"{name} ran no SQL on the reader's connection"
        assert loop_thread not in ran_on, f"{name} ran SQL on the event loop's thread"


async def test_closing_stops_both_threads_and_refuses_reads(tmp_path: Path) -> None:
    before = set(threading.enumerate())

    def started() -> set[str]:
        return {t.name for t in set(threading.enumerate()) - before
                if t.name.startswith("taskroute")}

    writer = SqliteStore(tmp_path / "log.db")
    assert started() == {"taskroute-store"}              # no reader thread until a read
    await writer.aclose()
    assert started() == set()
    store = SqliteStore(tmp_path / "log.db")
    await store.route_stats()
    assert started() == {"taskroute-store", "taskroute-store-reads_0"}
    await store.aclose()
    assert started() == set()
    with pytest.raises(RuntimeError, match="closed"):
        await store.route_stats()


def test_give_feedback_from_code_with_no_event_loop(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SqliteStore(db)
    writer.add(make_entry("r1"))
    writer.add(make_entry("r3"))
    writer.close()
    given = give_feedback(db, "r1", score=0.25, text="too long")
    assert (given.request_id, given.score, given.corrected) == ("r1", 0.25, False)
    with pytest.raises(DuplicateFeedback):
        give_feedback(db, "r1", thumbs="up")
    with pytest.raises(UnknownRequest):
        give_feedback(db, "r2", thumbs="up")
    with pytest.raises(InvalidRequest):
        give_feedback(db, "r1", score=2)
    with pytest.raises(InvalidRequest, match="task class name"):
        give_feedback(db, "r3", corrected=True, task="Not A Class")
    assert give_feedback(db, "r3", corrected=True, task="coding").task == "coding"
    assert rows(db, "SELECT request_id, score, text, named_task FROM feedback") == [
        ("r1", 0.25, "too long", None), ("r3", None, None, "coding")]


async def test_the_minute_rollup_is_seeded_from_what_was_rolled_up_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    store = SqliteStore(path)
    for i in range(3):
        store.add(make_entry(f"r{i}", escalate=i == 0))
    await store.flush()
    assert await store.catch_up() == 3
    await store.aclose()
    with sqlite3.connect(path) as conn:   # as a log written before 0010 would be
        conn.execute("DROP TABLE route_minutely")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0010_minute_rollups'")
    reopened = SqliteStore(path)
    try:
        got = await reopened.timeseries(since_s=3600, baseline_model=STRONG,
                                        baseline_price=PRICE, step="minute")
        assert sum(p["requests"] for p in got["points"]) == 3
        assert sum(p["escalated"] for p in got["points"]) == 1
        assert await reopened.catch_up() == 0      # and not counted twice
    finally:
        await reopened.aclose()


async def test_minute_buckets_older_than_two_days_are_dropped_as_new_ones_come(
    store: SqliteStore,
) -> None:
    old_minute = int((time.time() - 3 * 86400) // 60)
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO route_minutely VALUES (?, 5, 0.5, 0, 10, 10)", (old_minute,))
    fresh = make_entry("fresh")
    store.add(fresh)
    await store.flush()
    assert await store.catch_up() == 1
    assert rows(store.path, "SELECT minute, requests FROM route_minutely") == [
        (int(fresh.record.started_at // 60), 1)]
