"""The rollups' shape, shared by every backend: the fine key, the sums kept per hour and route,
and how the rows a backend reads (hourly sums, latency histograms, feedback) fold into
`quality.metrics.Counts` per fine group, for the pure report code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from taskroute.quality.metrics import Counts, FineKey
from taskroute.records import RouteRecord

FINE = ("task", "tier", "model", "policy", "variant")
SUMS = (
    "requests", "completed", "first_pass", "escalated", "under_served", "answered_unescalated",
    "cost_usd", "attempts", "errors", "input_tokens", "output_tokens", "baseline_tokens_in",
    "baseline_tokens_out", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
)
# The rollup sums `Counts` adds up as integers (cost apart; baselines are for time series).
_COUNTED = tuple(s for s in SUMS if s not in ("cost_usd", "baseline_tokens_in",
                                              "baseline_tokens_out"))
Row = Sequence[object]

# The shadow report's facts, one row per shadow decision in the window (both dialects; `{from}`
# is the table with any index hint, `{low}` and `{high}` the window's placeholders). Attempt
# statuses with a gate verdict: ok (passed) and rejected. Each backend sums them per group.
SHADOW_FACTS = """
SELECT s.policy, q.task, s.task AS shadow_task, q.tier, s.tier AS shadow_tier, q.model,
       s.model AS shadow_model, q.status IN ('ok', 'unchecked') AS ok, q.cost_usd,
       COALESCE((SELECT a.model FROM attempts a WHERE a.request_id = q.request_id
                 AND a.status IN ('ok', 'unchecked') ORDER BY a.seq DESC LIMIT 1), '')
           AS answered,
       COALESCE((SELECT MAX(a.input_tokens) FROM attempts a
                 WHERE a.request_id = q.request_id), q.input_tokens) AS tokens_in,
       COALESCE((SELECT a.output_tokens FROM attempts a WHERE a.request_id = q.request_id
                 AND a.status IN ('ok', 'unchecked') ORDER BY a.seq DESC LIMIT 1), 0)
           AS tokens_out,
       f.request_id IS NOT NULL AS has_feedback,
       f.request_id IS NOT NULL AND f.corrected = 0 AND COALESCE(f.score, 1) >= 0.5 AS good,
       (SELECT a.status FROM attempts a WHERE a.request_id = q.request_id
        AND a.model = s.model AND a.status IN ('ok', 'rejected') ORDER BY a.seq LIMIT 1)
           AS shadow_gate,
       (SELECT a.status FROM attempts a WHERE a.request_id = q.request_id
        AND a.model = q.model AND a.status IN ('ok', 'rejected') ORDER BY a.seq LIMIT 1)
           AS served_gate
FROM {from}
JOIN requests q ON q.request_id = s.request_id
LEFT JOIN feedback f ON f.request_id = s.request_id
WHERE s.ts >= {low} AND s.ts < {high} AND s.served_task IS NULL
"""
# The same facts for a shadow decision logged with them (`served_facts`, migration 0012 / 0007):
# read off the decision's row, only feedback (which arrives later) joined. The request row
# must still exist, as the join above demands (pruned, or never written: the decision is not
# counted either way).
SHADOW_LOGGED_FACTS = """
SELECT s.policy, s.served_task AS task, s.task AS shadow_task, s.served_tier AS tier,
       s.tier AS shadow_tier, s.served_model AS model, s.model AS shadow_model,
       s.served_ok AS ok, s.served_cost_usd AS cost_usd, s.answered, s.tokens_in, s.tokens_out,
       f.request_id IS NOT NULL AS has_feedback,
       f.request_id IS NOT NULL AND f.corrected = 0 AND COALESCE(f.score, 1) >= 0.5 AS good,
       s.shadow_gate, s.served_gate
FROM {from}
LEFT JOIN feedback f ON f.request_id = s.request_id
WHERE s.ts >= {low} AND s.ts < {high} AND s.served_task IS NOT NULL
  AND EXISTS (SELECT 1 FROM requests q WHERE q.request_id = s.request_id)
"""
# The columns `served_facts` fills, in its order.
SERVED_FACT_COLUMNS = ("served_task", "served_tier", "served_model", "served_ok",
                       "served_cost_usd", "answered", "tokens_in", "tokens_out", "shadow_gate",
                       "served_gate")


def served_facts(record: RouteRecord, shadow_model: str) -> tuple[object, ...]:
    """What `SHADOW_FACTS` reads from the served request and its attempts, taken from the
    finished record when the shadow decision is logged (`SERVED_FACT_COLUMNS`)."""
    decision, attempts = record.decision, record.attempts
    answering = [a for a in attempts if a.status in ("ok", "unchecked")]
    last = answering[-1] if answering else None

    def first_verdict(model: str) -> str | None:
        return next((a.status for a in attempts
                     if a.model == model and a.status in ("ok", "rejected")), None)

    return (decision.task, decision.tier, decision.model,
            record.status in ("ok", "unchecked"), record.total_cost_usd,
            last.model if last else "",
            max(a.input_tokens for a in attempts) if attempts else record.tokens.input,
            last.output_tokens if last else 0,
            first_verdict(shadow_model), first_verdict(decision.model))


def fold(hourly: Iterable[Row], histograms: Iterable[Row],
         feedback: Iterable[Row]) -> dict[FineKey, Counts]:
    """Rows as the rollups hold them — hourly: (hour, *FINE, *SUMS, first_ts, last_ts);
    histograms: (hour, *FINE, kind, bucket, n); feedback: (*FINE, count, scored, score sum,
    corrected, corrected on first pass, corrected unescalated) — summed per fine group."""
    groups: dict[FineKey, Counts] = {}
    for row in hourly:
        c = groups.setdefault(_key(row), Counts())
        sums = dict(zip(SUMS, row[6:6 + len(SUMS)], strict=True))
        for name in _COUNTED:
            setattr(c, name, getattr(c, name) + int(sums[name] or 0))  # type: ignore[call-overload]
        c.cost_usd += float(sums["cost_usd"] or 0.0)  # type: ignore[arg-type]
        first_ts, last_ts = row[6 + len(SUMS):]
        c.first_ts = min(c.first_ts, float(first_ts))  # type: ignore[arg-type]
        c.last_ts = max(c.last_ts, float(last_ts))  # type: ignore[arg-type]
    for row in histograms:
        c = groups.setdefault(_key(row), Counts())
        histogram = c.latency if row[6] == "latency" else c.first_token
        bucket, count = int(row[7]), int(row[8])  # type: ignore[call-overload]
        histogram[bucket] = histogram.get(bucket, 0) + count
    for row in feedback:
        c = groups.setdefault(_key((None, *row[:5])), Counts())
        c.feedback, c.scored = int(row[5]), int(row[6])  # type: ignore[call-overload]
        c.score_sum = float(row[7] or 0.0)  # type: ignore[arg-type]
        c.corrected = int(row[8] or 0)  # type: ignore[call-overload]
        c.corrected_first_pass = int(row[9] or 0)  # type: ignore[call-overload]
        c.corrected_unescalated = int(row[10] or 0)  # type: ignore[call-overload]
    return groups


def _key(row: Row) -> FineKey:
    return (str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]))
