"""The SQLite request log: one row per request, attempts alongside, batched off the loop."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import taskroute.store.sqlite as sqlite_store
from taskroute.decision import Decision
from taskroute.records import Attempt, GateVerdict, RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store import LogEntry, SqliteStore, Store
from taskroute.store.migrations import MIGRATIONS, applied, migrate
from taskroute.store.sqlite import (
    REQUEST_COLUMNS,
    attempt_rows,
    connect,
    request_row,
    shadow_row,
)
from tests.together import run_together


@functools.cache
def a_decision() -> Decision:
    return Router.default(classifier=False).decide(ChatRequest.from_prompt("hello there"))


def make_entry(request_id: str, *, escalate: bool = False) -> LogEntry:
    decision = a_decision()
    attempts = [
        Attempt(model=decision.model, deployment=decision.model, role="first",
                status="rejected" if escalate else "ok", started_at=time.time(),
                latency_s=0.2, first_token_s=0.05, input_tokens=10, output_tokens=5,
                cost_usd=0.001,
                verdicts=(GateVerdict("non_empty", not escalate, "empty answer"),)),
    ]
    if escalate:
        attempts.append(Attempt(model=decision.chain[1], deployment=decision.chain[1],
                                role="escalation", status="ok", started_at=time.time(),
                                latency_s=0.4, input_tokens=10, output_tokens=7, cost_usd=0.01))
    record = RouteRecord(
        request_id=request_id, decision=decision, attempts=attempts,
        answered_by=attempts[-1].model, latency_s=0.6, first_token_s=0.05,
        started_at=time.time(),
    )
    return LogEntry(record=record, api="openai", user="u1", session_id="s1", api_key_id="k1")


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


async def test_stores_one_row_per_request_with_its_attempts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.add(make_entry("r1"))
    store.add(make_entry("r2", escalate=True))
    await store.flush()
    requests = rows(tmp_path / "log.db",
                    "SELECT request_id, escalated, cost_usd, input_tokens, user FROM requests "
                    "ORDER BY request_id")
    assert requests == [("r1", 0, 0.001, 10, "u1"), ("r2", 1, 0.011, 20, "u1")]
    attempts = rows(tmp_path / "log.db",
                    "SELECT request_id, seq, role, status FROM attempts ORDER BY request_id, seq")
    assert attempts == [("r1", 0, "first", "ok"), ("r2", 0, "first", "rejected"),
                        ("r2", 1, "escalation", "ok")]
    await store.aclose()


async def test_implements_the_store_protocol(tmp_path: Path) -> None:
    store: Store = SqliteStore(tmp_path / "log.db")  # mypy checks the Protocol here
    store.add(make_entry("r1"))
    await store.flush()
    await store.aclose()
    await store.aclose()  # closing twice is harmless


async def test_add_does_not_wait_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held commits, not a stopwatch: `add` returning while the writer cannot commit shows it
    # never waits for SQLite (a journal append to the page cache and a queue put each). How
    # fast it is belongs to the benchmarks (bench/gateway.py), not a timed unit test.
    store = SqliteStore(tmp_path / "log.db")
    held, entered = threading.Event(), threading.Event()
    write = store._write

    def held_write(*args: Any) -> bool:
        entered.set()
        held.wait(10)
        return write(*args)

    monkeypatch.setattr(store, "_write", held_write)
    try:
        for i in range(2000):
            store.add(make_entry(f"r{i}"))
        flushed = asyncio.ensure_future(store.flush())
        assert await asyncio.to_thread(entered.wait, 10)     # the writer is stuck in a commit
        assert rows(tmp_path / "log.db", "SELECT count(*) FROM requests") == [(0,)]
        assert not flushed.done()
    finally:
        held.set()
    await flushed
    assert rows(tmp_path / "log.db", "SELECT count(*) FROM requests") == [(2000,)]
    await store.aclose()


async def test_flush_keeps_the_event_loop_free(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    for i in range(3000):
        store.add(make_entry(f"r{i}"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await store.flush()
    task.cancel()
    assert ticks > 1
    await store.aclose()


async def test_a_waiter_wakes_the_writer_at_once_not_on_its_timer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db", interval_s=30.0)
    await store.flush()  # the writer has started and is asleep on its 30 s timer
    store.add(make_entry("r1"))
    start = time.perf_counter()
    await asyncio.wait_for(store.flush(), 5)
    assert time.perf_counter() - start < 1.0
    # written through to the file: another connection (another process, too) sees it
    assert rows(tmp_path / "log.db", "SELECT request_id FROM requests") == [("r1",)]
    await store.aclose()


async def test_concurrent_waiters_share_one_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db", interval_s=30.0)
    await store.flush()
    commits: list[int] = []
    write = store._write

    def counted(batch: list[LogEntry], shadows: list[object]) -> None:
        commits.append(len(batch))
        write(batch, shadows)  # type: ignore[arg-type]

    store._write = counted  # type: ignore[method-assign,assignment]

    async def request(i: int) -> None:
        store.add(make_entry(f"r{i}"))
        await store.flush()

    await asyncio.gather(*(request(i) for i in range(64)))
    # the first waiter may wake the writer before the others queue, and each add's journal
    # write lets the writer's thread run (more often on a loaded machine: 20 commits seen at
    # load 8, 2 to 5 when quiet): commits shared by waiters, not one per waiter
    assert sum(commits) == 64 and len(commits) <= 32, commits
    await store.aclose()


async def test_a_cancelled_waiter_leaves_the_others_waiting(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.add(make_entry("r1"))
    cancelled, kept = store.flush(), store.flush()
    cancelled.cancel()
    await asyncio.wait_for(kept, 5)
    assert rows(tmp_path / "log.db", "SELECT count(*) FROM requests") == [(1,)]
    await store.aclose()
    await asyncio.wait_for(store.flush(), 5)  # a closed store has written everything


async def test_checkpoints_run_beside_the_writer_not_in_its_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def checkpoint(conn: sqlite3.Connection) -> None:
        threads.append(threading.current_thread().name)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    monkeypatch.setattr(sqlite_store, "_checkpoint", checkpoint)
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_S", 0.0)
    store = SqliteStore(tmp_path / "log.db")
    assert rows(tmp_path / "log.db", "PRAGMA wal_autocheckpoint") == [(1000,)]  # others' own
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchall() == [(0,)]
    for i in range(5):
        store.add(make_entry(f"r{i}"))
        await store.flush()
    await store.aclose()
    assert threads and all(name.startswith("taskroute-store-reads") for name in threads)


async def test_close_flushes_what_was_queued(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    for i in range(100):
        store.add(make_entry(f"r{i}"))
    await store.aclose()
    assert rows(tmp_path / "log.db", "SELECT count(*) FROM requests") == [(100,)]
    assert not store._thread.is_alive()  # this store's writer (another test's may linger)
    with pytest.raises(RuntimeError):
        store.add(make_entry("late"))


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.close()
    assert rows(tmp_path / "log.db", "PRAGMA journal_mode") == [("wal",)]


def test_migrates_a_blank_database(tmp_path: Path) -> None:
    conn = connect(tmp_path / "log.db")
    ran = migrate(conn)
    assert ran == [name for name, _ in MIGRATIONS]
    assert applied(conn) == ran
    assert migrate(conn) == []  # idempotent
    columns = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    assert {"request_id", "decision", "variant", "api_key_id"} <= columns
    conn.close()


@pytest.mark.parametrize("previous", [name for name, _ in MIGRATIONS[:-1]])
def test_migrates_from_an_earlier_schema_keeping_rows(tmp_path: Path, previous: str) -> None:
    path = tmp_path / "log.db"
    conn = connect(path)
    migrate(conn, upto=previous)
    existing = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
    old = dict(zip(REQUEST_COLUMNS, request_row(make_entry("old")), strict=True))
    values = [old[c] for c in existing]
    conn.execute(f"INSERT INTO requests ({', '.join(existing)}) "
                 f"VALUES ({', '.join('?' * len(values))})", values)
    conn.close()

    store = SqliteStore(path)
    store.add(make_entry("new"))
    store.close()
    assert rows(path, "SELECT request_id, variant FROM requests ORDER BY request_id") == [
        ("new", None), ("old", None)]
    assert rows(path, "SELECT name FROM schema_migrations") == [(n,) for n, _ in MIGRATIONS]
    indexes = {r[0] for r in rows(path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert "requests_route" in indexes
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]


async def test_a_shadow_decision_from_before_0012_is_joined_and_a_new_one_read_off_its_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    conn = connect(path)
    migrate(conn, upto="0011_request_facts")
    old, new = make_entry("old", escalate=True), make_entry("new", escalate=True)
    conn.execute(f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})", request_row(old))
    conn.executemany(f"INSERT INTO attempts ({', '.join(sqlite_store.ATTEMPT_COLUMNS)}) VALUES "
                     f"({', '.join('?' * len(sqlite_store.ATTEMPT_COLUMNS))})", attempt_rows(old))
    shadow = dataclasses.replace(a_decision(), policy="candidate", model=a_decision().chain[1])
    conn.execute("INSERT INTO shadow_decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                 shadow_row(("old", time.time(), shadow, None))[:7])
    conn.close()

    store = SqliteStore(path)
    store.add(new)
    store.add_shadow("new", shadow, served=new.record)
    report = await store.shadow_report(since_s=3600, prices={})
    await store.aclose()
    assert rows(path, "SELECT request_id, served_task IS NOT NULL, answered, tokens_out, "
                      "shadow_gate, served_gate FROM shadow_decisions ORDER BY request_id") == [
        ("new", 1, shadow.model, 7, "ok", "rejected"), ("old", 0, None, None, None, None)]
    (got,) = report["policies"]
    assert got["requests"] == 2 and got["served_cost_usd"] == pytest.approx(2 * 0.011)
    assert got["quality"]["shadow"]["gates"] == {**got["quality"]["shadow"]["gates"], "n": 2,
                                                 "good": 2}
    assert got["quality"]["served"]["gates"]["n"] == 2
    assert got["quality"]["served"]["gates"]["good"] == 0


# A feedback row as the schema before SQLite 0013 / Postgres 0008 held it: no `named_task`.
OLD_FEEDBACK = ("INSERT INTO feedback (request_id, ts, score, corrected, text, api_key_id, "
                "request_ts, task, tier, model, policy, variant, first_pass, unescalated) "
                "VALUES ({marks})")


def old_feedback(entry: LogEntry, text: str) -> tuple[object, ...]:
    """A correction whose text names the class, on `entry`, as logged before the field."""
    decision = entry.record.decision
    return (entry.record.request_id, time.time(), None, 1, text, None, entry.record.started_at,
            decision.task, decision.tier, decision.model, decision.policy, "", 1, 1)


async def test_feedback_from_before_0013_names_its_class_by_its_text(tmp_path: Path) -> None:
    from taskroute.quality.feedback import make_feedback
    from taskroute.store.logfile import read_rated_answers

    path = tmp_path / "log.db"
    conn = connect(path)
    migrate(conn, upto="0012_shadow_facts")
    old = dataclasses.replace(make_entry("old"), prompt="Fix the spinner.", answer="Ok.")
    conn.execute(f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})", request_row(old))
    conn.execute(OLD_FEEDBACK.format(marks=", ".join("?" * 14)),
                 old_feedback(old, "task: coding"))
    conn.close()
    (answer,) = read_rated_answers(path)  # read-only, not migrated: no `named_task` to read
    assert (answer.named_task, answer.feedback_task) == (None, "coding")

    store = SqliteStore(path)
    new = dataclasses.replace(make_entry("new"), prompt="Sort the list.", answer="Ok.")
    store.add(new)
    await store.flush()
    await store.add_feedback(make_feedback("new", corrected=True, task="coding",
                                           text="task: qa"))
    rated = [(a.prompt, a.named_task, a.feedback_task) for a in await store.rated_answers()]
    stats = await store.route_stats(since_s=None)
    await store.aclose()
    assert rated == [("Fix the spinner.", None, "coding"), ("Sort the list.", "coding", "coding")]
    assert stats["misroutes"]["pairs"] == [
        {"served": old.record.decision.task, "named": "coding", "requests": 2}]
    assert rows(path, "SELECT request_id, named_task FROM feedback ORDER BY rowid") == [
        ("old", None), ("new", "coding")]


def test_refuses_a_database_from_a_newer_taskroute(tmp_path: Path) -> None:
    conn = connect(tmp_path / "log.db")
    migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES ('9999_from_the_future', 0)")
    conn.close()
    with pytest.raises(RuntimeError, match="9999_from_the_future"):
        SqliteStore(tmp_path / "log.db")


_OPEN_TOGETHER = """
import sys, time
from taskroute.store.sqlite import SqliteStore
folder, start = sys.argv[1], float(sys.argv[2])
for i in range(10):
    while time.time() < start + i * 0.2:
        time.sleep(0.001)
    SqliteStore(f"{folder}/log{i}.db").close()
"""


def test_processes_opening_one_new_log_together_all_open_it(tmp_path: Path) -> None:
    # `serve --workers` starts its workers at once on a log file none has made yet.
    codes, errors = run_together(_OPEN_TOGETHER, tmp_path)
    assert codes == [0, 0, 0], errors
    for i in range(10):
        conn = connect(tmp_path / f"log{i}.db")
        assert applied(conn) == [name for name, _ in MIGRATIONS]
        conn.close()
