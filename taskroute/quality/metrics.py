"""Route-quality metrics: what each one means, and the arithmetic, with no database in sight.

A `LogReader` (`taskroute.store`) sums the window's requests per task class × tier × first-pick
model × policy × variant into `Counts` (the "fine groups", feedback joined to its requests);
`report` adds them up to whatever `by` asks for. Every metric, for a group of requests:

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
- ``tokens``: every attempt's tokens summed: ``input`` (cached ones included), of which
  ``cached_input`` were read from a prompt cache and ``cache_write`` written to one;
  ``output`` (reasoning ones included), of which ``reasoning`` were spent reasoning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from taskroute.quality.window import window_start

BUCKETS_PER_E = 50  # latency histograms: bucket = floor(50 · ln(1 + ms)), each ≈ 2% wide
By = Literal["route", "class", "model", "tier", "policy"]
BY_CHOICES: tuple[By, ...] = ("route", "class", "model", "tier", "policy")
OVER_SERVED_PASS_RATE = 0.9
OVER_SERVED_MIN_REQUESTS = 30

# Tokens: every input (cached ones included) and output (reasoning ones included) token, and
# of those, the input read from and written to a prompt cache and the output spent reasoning.
TOKEN_SUMS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
              "reasoning_tokens")
_SUMMED = (
    "requests", "completed", "first_pass", "escalated", "cost_usd", "attempts", "errors",
    "under_served", "answered_unescalated", "over_served", "feedback", "scored", "score_sum",
    "corrected", "corrected_first_pass", "corrected_unescalated", *TOKEN_SUMS,
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
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
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
            "tokens": {name.removesuffix("_tokens"): getattr(self, name) for name in TOKEN_SUMS},
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


def report(
    groups: dict[FineKey, Counts], *, since_s: float | None, now: float, by: By = "route",
    tier_order: Sequence[str] = (), started: float | None = None,
) -> dict[str, Any]:
    """The stats report from the window's fine groups: one row per `by` group (busiest first)
    plus the totals, as plain JSON-ready data. `started` is the `time.perf_counter()` at which
    the read began (for `query_ms`). Fills in the groups' `over_served`."""
    started = time.perf_counter() if started is None else started
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
        "since": window_start(since_s, now), "until": now, "window_s": since_s, "by": by,
        "group_fields": list(fields), "rows": rows, "total": total.metrics(),
        "query_ms": round((time.perf_counter() - started) * 1000, 1),
    }
