"""Route-quality metrics, computed in SQL from the request log.

The window's requests are summed per task class × tier × first-pick model × policy × variant,
from the hourly rollups (`taskroute.quality.rollup`) plus the requests outside whole hours; the
(few) feedback rows are joined to their requests. Python then adds these fine groups up to
whatever `by` asks for. Every metric, for a group of requests:

- ``first_pass``: answered by the decision's first pick with no gate rejecting an answer, no
  upstream error (not even one a retry recovered) and no escalation; over all requests.
- ``escalation``: requests whose answer came from, or needed, a model after the first pick.
- ``cost_per_task``: every dollar the group spent (every attempt, rejected and failed ones and
  failed requests included) divided by the requests that completed (status ok).
- ``latency_p50/p95``, ``first_token_p50/p95``: seconds, over completed requests, read from a
  log-scale histogram with buckets 2% wide (so within about 1% of the exact value).
- ``upstream_error``: attempts that failed upstream (status `error`) over all attempts.
- ``correction``: feedback saying the user had to fix or redo the answer, over the requests
  that got feedback (None without feedback); ``score`` is the mean feedback score.
- ``under_served``: the first pick's answer was rejected by a gate and the request escalated —
  the class needed a stronger model than the one chosen.
- ``over_served``: answered first time, without escalation, at a tier above the cheapest, for a
  class whose requests first routed to a cheaper tier in the same window did fine there: at
  least `OVER_SERVED_MIN_REQUESTS` of them, and at least `OVER_SERVED_PASS_RATE` answered
  first time and not corrected by the user. (Requests with a correction never count as
  over-served.) Tiers are ordered by the policy, cheapest first.
- ``misrouting``: (under-served + over-served) over all requests.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from taskroute.quality.rollup import BUCKETS_PER_E, catch_up, window_rows

By = Literal["route", "class", "model", "tier", "policy"]
BY_CHOICES: tuple[By, ...] = ("route", "class", "model", "tier", "policy")
OVER_SERVED_PASS_RATE = 0.9
OVER_SERVED_MIN_REQUESTS = 30

_FEEDBACK_SQL = """
SELECT task, tier, model, policy, variant, COUNT(*), COUNT(score), SUM(score), SUM(corrected),
       SUM(corrected AND first_pass), SUM(corrected AND unescalated)
FROM feedback INDEXED BY feedback_window
WHERE request_ts >= ? AND request_ts < ?
GROUP BY 1, 2, 3, 4, 5
"""

_SUMMED = (
    "requests", "completed", "first_pass", "escalated", "cost_usd", "attempts", "errors",
    "under_served", "answered_unescalated", "over_served", "feedback", "scored", "score_sum",
    "corrected", "corrected_first_pass", "corrected_unescalated",
)
FineKey = tuple[str, str, str, str, str]  # task, tier, model, policy, variant


@dataclass(slots=True)
class Counts:
    """Sums over a group of requests: everything the metrics are computed from."""

    requests: int = 0
    completed: int = 0
    first_pass: int = 0
    escalated: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    errors: int = 0
    under_served: int = 0
    answered_unescalated: int = 0
    over_served: int = 0
    feedback: int = 0
    scored: int = 0
    score_sum: float = 0.0
    corrected: int = 0
    corrected_first_pass: int = 0
    corrected_unescalated: int = 0
    first_ts: float = math.inf
    last_ts: float = -math.inf
    latency: dict[int, int] = field(default_factory=dict)      # bucket → completed requests
    first_token: dict[int, int] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_ts = min(self.first_ts, other.first_ts)
        self.last_ts = max(self.last_ts, other.last_ts)
        for mine, theirs in ((self.latency, other.latency),
                             (self.first_token, other.first_token)):
            for bucket, count in theirs.items():
                mine[bucket] = mine.get(bucket, 0) + count

    def metrics(self) -> dict[str, Any]:
        n = self.requests
        return {
            "requests": n,
            "completed": self.completed,
            "first_pass": _ratio(self.first_pass, n),
            "escalation": _ratio(self.escalated, n),
            "cost_usd": round(self.cost_usd, 8),
            "cost_per_task": round(self.cost_usd / self.completed, 8) if self.completed
            else None,
            "latency_p50": quantile(self.latency, 0.5),
            "latency_p95": quantile(self.latency, 0.95),
            "first_token_p50": quantile(self.first_token, 0.5),
            "first_token_p95": quantile(self.first_token, 0.95),
            "upstream_error": _ratio(self.errors, self.attempts),
            "feedback": self.feedback,
            "score": _ratio(self.score_sum, self.scored),
            "correction": _ratio(self.corrected, self.feedback),
            "under_served": _ratio(self.under_served, n),
            "over_served": _ratio(self.over_served, n),
            "misrouting": _ratio(self.under_served + self.over_served, n),
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def quantile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile, in seconds, of a log-scale histogram (linear within a bucket)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank:
            low = (math.exp(bucket / BUCKETS_PER_E) - 1.0) / 1000.0
            high = (math.exp((bucket + 1) / BUCKETS_PER_E) - 1.0) / 1000.0
            share = (rank - seen) / count
            return round(low + (high - low) * share, 6)
        seen += count
    return None  # pragma: no cover - the loop always reaches the total


def fine_counts(
    conn: sqlite3.Connection, since: float | None, until: float | None = None
) -> dict[FineKey, Counts]:
    """The window's requests, summed per (task, tier, model, policy, variant)."""
    hourly, histograms = window_rows(conn, since, until)
    groups: dict[FineKey, Counts] = {}
    for row in hourly:
        c = groups.setdefault(_key(row), Counts())
        (n, ok, first, esc, under, unesc, cost, attempts, errors, *_tokens, first_ts,
         last_ts) = row[6:]
        c.requests += int(n)  # type: ignore[call-overload]
        c.completed += int(ok)  # type: ignore[call-overload]
        c.first_pass += int(first)  # type: ignore[call-overload]
        c.escalated += int(esc)  # type: ignore[call-overload]
        c.under_served += int(under)  # type: ignore[call-overload]
        c.answered_unescalated += int(unesc)  # type: ignore[call-overload]
        c.cost_usd += float(cost)  # type: ignore[arg-type]
        c.attempts += int(attempts)  # type: ignore[call-overload]
        c.errors += int(errors)  # type: ignore[call-overload]
        c.first_ts = min(c.first_ts, float(first_ts))  # type: ignore[arg-type]
        c.last_ts = max(c.last_ts, float(last_ts))  # type: ignore[arg-type]
    for row in histograms:
        c = groups.setdefault(_key(row), Counts())
        histogram = c.latency if row[6] == "latency" else c.first_token
        bucket, count = int(row[7]), int(row[8])  # type: ignore[call-overload]
        histogram[bucket] = histogram.get(bucket, 0) + count
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    for row in conn.execute(_FEEDBACK_SQL, (low, high)):
        c = groups.setdefault(row[:5], Counts())
        c.feedback, c.scored, c.score_sum, c.corrected = row[5], row[6], row[7] or 0.0, row[8]
        c.corrected_first_pass, c.corrected_unescalated = row[9], row[10]
    return groups


def try_catch_up(conn: sqlite3.Connection) -> int:
    """Roll up what is new; a read-only log (or a busy one) is read as it is."""
    try:
        return catch_up(conn)
    except sqlite3.OperationalError:
        return 0


def _key(row: tuple[object, ...]) -> FineKey:
    return (str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]))


def mark_over_served(groups: dict[FineKey, Counts], tier_order: Sequence[str]) -> None:
    """Fill in `over_served` for each fine group (see the module docstring)."""
    rank = {name: i for i, name in enumerate(tier_order)}
    by_task_tier: dict[tuple[str, str], Counts] = {}
    for (task, tier, *_), counts in groups.items():
        by_task_tier.setdefault((task, tier), Counts()).add(counts)
    fine_enough: dict[str, int] = {}  # task → the highest tier rank with good evidence
    for (task, tier), c in by_task_tier.items():
        good = c.first_pass - c.corrected_first_pass
        if (c.requests >= OVER_SERVED_MIN_REQUESTS
                and good >= OVER_SERVED_PASS_RATE * c.requests and tier in rank):
            fine_enough[task] = max(fine_enough.get(task, -1), rank[tier])
    for (task, tier, *_), c in groups.items():
        cheaper_ok = fine_enough.get(task)
        c.over_served = 0
        if cheaper_ok is not None and tier in rank and rank[tier] > cheaper_ok:
            c.over_served = c.answered_unescalated - c.corrected_unescalated


def group_key(key: FineKey, by: By) -> tuple[str, ...]:
    task, tier, model, policy, variant = key
    if by == "class":
        return (task,)
    if by == "model":
        return (model,)
    if by == "tier":
        return (tier,)
    if by == "policy":
        return (policy, variant)
    return (task, tier, model)


GROUP_FIELDS: dict[By, tuple[str, ...]] = {
    "route": ("task", "tier", "model"), "class": ("task",), "model": ("model",),
    "tier": ("tier",), "policy": ("policy", "variant"),
}


def route_stats(
    conn: sqlite3.Connection, *, since_s: float | None = 86400.0, by: By = "route",
    tier_order: Sequence[str] = (), now: float | None = None, roll_up: bool = True,
) -> dict[str, Any]:
    """The stats report: one row per group plus the totals, as plain JSON-ready data."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    since = None if since_s is None else now - since_s
    if roll_up:
        try_catch_up(conn)
    groups = fine_counts(conn, since)
    mark_over_served(groups, tier_order)
    merged: dict[tuple[str, ...], Counts] = {}
    total = Counts()
    for key, counts in groups.items():
        merged.setdefault(group_key(key, by), Counts()).add(counts)
        total.add(counts)
    fields = GROUP_FIELDS[by]
    rows = [
        {**dict(zip(fields, key, strict=True)), **counts.metrics()}
        for key, counts in sorted(merged.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    ]
    return {
        "since": since, "until": now, "window_s": since_s, "by": by, "group_fields": list(fields),
        "rows": rows, "total": total.metrics(),
        "query_ms": round((time.perf_counter() - started) * 1000, 1),
    }
