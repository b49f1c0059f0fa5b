"""Every route-quality metric against a hand computation over a log with known outcomes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from taskroute.quality.feedback import give_feedback
from taskroute.quality.metrics import route_stats
from taskroute.store.sqlite import connect
from tests.quality.logbook import Logbook

MINI, MID, STRONG = "openai/gpt-4.1-mini", "openai/gpt-4.1", "anthropic/claude-opus-4-5"
TIERS = ("fast", "balanced", "strong")


@pytest.fixture
def log(tmp_path: Path) -> Logbook:
    return Logbook(tmp_path / "log.db")


def _conn(log: Logbook) -> sqlite3.Connection:
    log.close()
    return connect(log.db)


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


def test_every_metric_matches_the_hand_computation(log: Logbook) -> None:
    ids = _five_chat_requests(log)
    conn = _conn(log)
    give_feedback(conn, ids[0], thumbs="up")
    give_feedback(conn, ids[1], score=0.0, corrected=True)
    report = route_stats(conn, since_s=3600, tier_order=TIERS)
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


def test_the_window_leaves_out_older_requests(log: Logbook) -> None:
    log.add(ts=time.time() - 7200)
    log.add(ts=time.time() - 10)
    conn = _conn(log)
    assert route_stats(conn, since_s=3600)["total"]["requests"] == 1
    assert route_stats(conn, since_s=3 * 3600)["total"]["requests"] == 2
    assert route_stats(conn, since_s=None)["total"]["requests"] == 2


def test_rolled_up_and_fresh_requests_count_exactly_once(log: Logbook) -> None:
    for _ in range(3):
        log.add()
    log.store.close()
    conn = connect(log.db)
    assert route_stats(conn, since_s=None)["total"]["requests"] == 3   # rolls up those three
    more = Logbook(log.db)
    more.count = 100
    more.add()
    more.close()
    assert route_stats(conn, since_s=None, roll_up=False)["total"]["requests"] == 4
    assert route_stats(conn, since_s=None)["total"]["requests"] == 4
    assert route_stats(conn, since_s=None)["total"]["requests"] == 4


def test_over_served_when_the_cheaper_tier_does_fine_for_the_class(log: Logbook) -> None:
    for _ in range(30):                      # chat at the fast tier: every answer first time
        log.add()
    for _ in range(10):                      # chat moved up to balanced, answered first time
        log.add(tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)])
    conn = _conn(log)
    report = route_stats(conn, since_s=3600, by="tier", tier_order=TIERS)
    by_tier = {r["tier"]: r for r in report["rows"]}
    assert by_tier["balanced"]["over_served"] == 1.0
    assert by_tier["fast"]["over_served"] == 0.0
    assert report["total"]["misrouting"] == 10 / 40


def test_no_over_served_without_enough_evidence(log: Logbook) -> None:
    for _ in range(29):
        log.add()
    log.add(tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)])
    conn = _conn(log)
    assert route_stats(conn, since_s=3600, tier_order=TIERS)["total"]["over_served"] == 0.0


def test_groups_by_class_model_tier_and_policy(log: Logbook) -> None:
    log.add(variant="a")
    log.add(task="coding", tier="balanced", model=MID, attempts=[(MID, "ok", 0.004)],
            variant="b")
    conn = _conn(log)
    assert [r["task"] for r in route_stats(conn, by="class")["rows"]] == ["chat", "coding"]
    assert {r["model"] for r in route_stats(conn, by="model")["rows"]} == {MINI, MID}
    policy_rows = route_stats(conn, by="policy")["rows"]
    assert {(r["policy"], r["variant"]) for r in policy_rows} == {("default", "a"),
                                                                 ("default", "b")}
