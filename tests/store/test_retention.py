"""Retention: rows older than the horizon go, newer stay, a batch at a time, while writes go on;
the policy's `log keep` sets it and the gateway applies it in the background."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy.loader import default_policy_text, load_default_policy, parse_policy
from taskroute.policy.prose import describe_policy
from taskroute.store import SqliteStore
from taskroute.store.base import LogEntry, LogReader, Refusal
from taskroute.store.retention import keep_pruning, prune_once

from .test_sqlite import make_entry

DAY = 86400.0


def aged(request_id: str, age_s: float) -> LogEntry:
    entry = make_entry(request_id)
    record = dataclasses.replace(entry.record, started_at=time.time() - age_s)
    return dataclasses.replace(entry, record=record)


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_rows_older_than_the_horizon_go_and_newer_stay(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = SqliteStore(db)
    assert isinstance(store, LogReader)
    for i in range(30):
        store.add(aged(f"old{i}", 40 * DAY))
    for i in range(5):
        store.add(aged(f"new{i}", 1 * DAY))
    store.add_refused(Refusal("ref-old", time.time() - 40 * DAY, "openai", "/v1/x", 400,
                              "invalid_request_error", "bad"))
    store.add_refused(Refusal("ref-new", time.time(), "openai", "/v1/x", 400,
                              "invalid_request_error", "bad"))
    await store.flush()
    before = (await store.route_stats(since_s=None))["total"]["requests"]
    assert await prune_once(store, 30 * DAY, batch=7, pause_s=0) == 30
    with sqlite3.connect(db) as conn:
        left = sorted(r[0] for r in conn.execute("SELECT request_id FROM requests"))
        refused = [r[0] for r in conn.execute("SELECT request_id FROM refused")]
    assert left == [f"new{i}" for i in range(5)] and refused == ["ref-new"]
    assert count(db, "attempts") == 5  # the old requests' attempts went with them
    # the hourly sums keep what was pruned: an all-time report still counts it
    assert (await store.route_stats(since_s=None))["total"]["requests"] == before
    await store.aclose()


async def test_one_prune_call_deletes_at_most_one_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    for i in range(25):
        store.add(aged(f"old{i}", 40 * DAY))
    store.add(aged("new", 0))
    await store.flush()
    before = time.time() - 30 * DAY
    assert [await store.prune(before, 10) for _ in range(4)] == [10, 10, 5, 0]
    await store.aclose()


async def test_the_newest_request_stays_even_when_old(tmp_path: Path) -> None:
    # SQLite would reuse rowids from 1 in an emptied table, behind the rollup's mark.
    db = tmp_path / "log.db"
    store = SqliteStore(db)
    for i in range(3):
        store.add(aged(f"old{i}", 40 * DAY))
    await store.flush()
    await prune_once(store, 30 * DAY, pause_s=0)
    assert count(db, "requests") == 1
    store.add(aged("later", 0))
    await store.flush()
    await store.catch_up()
    assert (await store.route_stats(since_s=3600))["total"]["requests"] == 1
    await store.aclose()


async def test_writes_go_on_while_pruning(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = SqliteStore(db)
    for i in range(3000):
        store.add(aged(f"old{i}", 40 * DAY))
    await store.flush()
    written = 0

    async def write() -> None:
        nonlocal written
        while not pruning.done():
            store.add(aged(f"live{written}", 0))
            written += 1
            await store.flush()  # each write commits while batches are being deleted

    pruning = asyncio.ensure_future(prune_once(store, 30 * DAY, batch=100, pause_s=0.005))
    await asyncio.gather(pruning, write())
    assert pruning.result() == 3000 and written >= 5, written
    await store.flush()
    with sqlite3.connect(db) as conn:
        live = conn.execute("SELECT COUNT(*) FROM requests WHERE request_id LIKE 'live%'")
        assert live.fetchone()[0] == written
        assert conn.execute("SELECT COUNT(*) FROM requests WHERE request_id LIKE 'old%'"
                            ).fetchone()[0] == 0
    await store.aclose()


async def test_keep_pruning_runs_in_the_background_and_reads_the_horizon_each_round(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "log.db")
    for i in range(10):
        store.add(aged(f"old{i}", 10 * DAY))
    store.add(aged("new", 0))
    await store.flush()
    horizons: list[float | None] = [None, 30 * DAY, DAY]

    def horizon() -> float | None:
        return horizons.pop(0) if len(horizons) > 1 else horizons[0]

    task = asyncio.create_task(keep_pruning(store, horizon, every_s=0.01, pause_s=0))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if count(tmp_path / "log.db", "requests") == 1:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert count(tmp_path / "log.db", "requests") == 1  # the 1-day horizon, once it came
    await store.aclose()


def test_log_keep_reads_like_the_rest_of_the_policy() -> None:
    policy = load_default_policy()
    assert policy.log_keep_s == 30 * DAY
    assert "Requests older than 30d are deleted from the log." in describe_policy(policy)
    text = default_policy_text().replace("log keep: 30d", "log keep: 0s")
    with pytest.raises(PolicyError, match="log keep"):
        parse_policy(text, file="p.yaml")
    kept = parse_policy(default_policy_text().replace("log keep: 30d", ""), file="p.yaml")
    assert kept.log_keep_s is None
    assert "keeps every request" in describe_policy(kept)
