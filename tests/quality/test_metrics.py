"""Every route-quality metric against a hand computation over a log with known outcomes, read
through the `LogReader` Protocol (SQLite's implementation)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskroute.quality.feedback import make_feedback
from taskroute.store import sqlite_reads
from taskroute.store.base import LogReader
from taskroute.store.sqlite import connect
from tests.quality.logbook import Logbook

MINI, MID, STRONG = "openai/gpt-4.1-mini", "openai/gpt-4.1", "anthropic/claude-opus-4-5"
TIERS = ("fast", "balanced", "strong")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Logbook]:
    book = Logbook(tmp_path / "log.db")
    yield book
    book.close()


async def _total(reader: LogReader, since_s: float | None) -> int:
    report = await reader.route_stats(since_s=since_s)
    requests: int = report["total"]["requests"]
    return requests


def _close(actual: float | None, expected: float, rel: float = 0.03) -> bool:
    return actual is not None and abs(actual - expected) <= rel * expected


def _five_chat_requests(log: Logbook) -> list[str]:
    return [
        log.add(latency=0.2, first_token=0.05),                                    # first pass
        log.add(latency=0.4, first_token=0.10),                                    # first pass
        log.add(attempts=[(MINI, "rejected", 0.001), (MID, "ok", 0.004)], latency=1.0,
                first_token=0.3),                                                  # under-served
        log.add(attempts=[(MINI, "error", 0.0), (MINI, "ok", 0.001)], latency=0.6),  # retried
        log.add(attempts=[(MINI, "error", 0.0), (MID, "error", 0.0)], latency=0.9),  # failed
    ]


async def test_every_metric_matches_the_hand_computation(log: Logbook) -> None:
    ids = _five_chat_requests(log)
    reader = await log.reader()
    await reader.add_feedback(make_feedback(ids[0], thumbs="up"))
    await reader.add_feedback(make_feedback(ids[1], score=0.0, corrected=True))
    report = await reader.route_stats(since_s=3600, tier_order=TIERS)
    (row,) = report["rows"]
    assert (row["task"], row["tier"], row["model"]) == ("chat", "fast", MINI)
    assert row["requests"] == 5 and row["completed"] == 4
    assert row["first_pass"] == 2 / 5
    assert row["escalation"] == 2 / 5                      # the rejected one and the failed one
    assert row["cost_usd"] == pytest.approx(0.001 + 0.001 + 0.005 + 0.001)
    assert row["cost_per_task"] == pytest.approx(0.008 / 4)  # rejected attempt included
    assert row["upstream_error"] == 3 / 8                   # 3 failed attempts out of 8
    assert row["under_served"] == 1 / 5 and row["over_served"] == 0.0
    assert row["misrouting"] == 1 / 5
    assert row["feedback"] == 2 and row["correction"] == 1 / 2 and row["score"] == 0.5
    # completed latencies 0.2, 0.4, 0.6, 1.0: the 2nd and the 4th (interpolated, 2% buckets)
    assert _close(row["latency_p50"], 0.4) and _close(row["latency_p95"], 1.0)
    # first tokens 0.05, 0.1, 0.3: median the 2nd
    assert _close(row["first_token_p50"], 0.1) and _close(row["first_token_p95"], 0.3)
    assert report["total"]["requests"] == 5


async def test_the_window_leaves_out_older_requests(log: Logbook) -> None:
    log.add(ts=time.time() - 7200)
    log.add(ts=time.time() - 10)
    reader = await log.reader()
    assert await _total(reader, 3600) == 1
    assert await _total(reader, 3 * 3600) == 2
    assert await _total(reader, None) == 2


async def test_rolled_up_and_fresh_requests_count_exactly_once(log: Logbook) -> None:
    for _ in range(3):
        log.add()
    reader = await log.reader()
    assert await reader.catch_up() == 3
    assert await reader.catch_up() == 0
    assert await _total(reader, None) == 3
    log.add()
    await log.store.flush()
    conn = connect(log.db)
    try:  # the new request read from the log itself, not rolled up
        assert sqlite_reads.route_stats(conn, since_s=None, roll_up=False)[
            "total"]["requests"] == 4
    finally:
        conn.close()
    assert await _total(reader, None) == 4                   # rolls it up
    assert await _total(reader, None) == 4
    assert await reader.catch_up() == 0


async def test_over_served_when_the_cheaper_tier_does_fine_for_the_class(log: Logbook) -> None:
    for _ in range(30):                      # chat at the fast tier: every answer first time
        log.add()
    for _ in range(10):                      # chat moved up to balanced, answered first time
        log.add(tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)])
    reader = await log.reader()
    report = await reader.route_stats(since_s=3600, by="tier", tier_order=TIERS)
    by_tier = {r["tier"]: r for r in report["rows"]}
    assert by_tier["balanced"]["over_served"] == 1.0
    assert by_tier["fast"]["over_served"] == 0.0
    assert report["total"]["misrouting"] == 10 / 40


async def test_no_over_served_without_enough_evidence(log: Logbook) -> None:
    for _ in range(29):
        log.add()
    log.add(tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)])
    reader = await log.reader()
    report = await reader.route_stats(since_s=3600, tier_order=TIERS)
    assert report["total"]["over_served"] == 0.0


async def test_groups_by_class_model_tier_and_policy(log: Logbook) -> None:
    log.add(variant="a")
    log.add(task="coding", tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)],
            variant="b")
    reader = await log.reader()
    by_class = (await reader.route_stats(by="class"))["rows"]
    assert [r["task"] for r in by_class] == ["chat", "coding"]
    assert {r["model"] for r in (await reader.route_stats(by="model"))["rows"]} == {MINI, MID}
    policy_rows = (await reader.route_stats(by="policy"))["rows"]
    assert {(r["policy"], r["variant"]) for r in policy_rows} == {("default", "a"),
                                                                 ("default", "b")}
