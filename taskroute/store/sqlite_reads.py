"""The SQLite log's reports: the SQL behind `LogReader`'s route stats, time series and A/B
report. Blocking functions over one connection; `SqliteStore` runs them on its reader thread.

Each sums the window's requests per (task, tier, model, policy, variant) — whole hours from the
rollups (`sqlite_rollup`), the rest from the log — and hands the sums to the pure code in
`taskroute.quality`, which turns them into the report.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from taskroute.policy.model import Price
from taskroute.quality import abtest, shadow, timeseries
from taskroute.quality.feedback import misroutes
from taskroute.quality.metrics import By, Counts, FineKey, report
from taskroute.quality.window import window_start
from taskroute.store.counts import SHADOW_FACTS, SHADOW_LOGGED_FACTS, fold
from taskroute.store.sqlite_rollup import catch_up, window_rows

_FEEDBACK = """
SELECT task, tier, model, policy, variant, COUNT(*), COUNT(score), SUM(score), SUM(corrected),
       SUM(corrected AND first_pass), SUM(corrected AND unescalated)
FROM feedback INDEXED BY feedback_window
WHERE request_ts >= ? AND request_ts < ?
GROUP BY 1, 2, 3, 4, 5
"""
# Feedback naming a task class: by its `task`, or (rows from before it) by a text LIKE finds,
# ASCII case aside, wherever `task_named` could match; `misroutes` applies the one rule. The
# first OR is the partial index's own condition, word for word, so SQLite may read it.
_NAMED = """
SELECT task, named_task, CASE WHEN named_task IS NULL THEN text END, COUNT(*)
FROM feedback INDEXED BY feedback_named
WHERE request_ts >= ? AND request_ts < ? AND (named_task IS NOT NULL OR text IS NOT NULL)
  AND (named_task IS NOT NULL OR text LIKE '%task%')
GROUP BY 1, 2, 3
"""
_HOURS = """
SELECT hour, SUM(requests), SUM(cost_usd), SUM(escalated), SUM(baseline_tokens_in),
       SUM(baseline_tokens_out)
FROM route_hourly WHERE hour >= ? GROUP BY hour ORDER BY hour
"""
_SAMPLES = """
SELECT cost_usd, latency_s, status FROM requests
WHERE COALESCE(variant, '') = ? AND ts >= ? AND rowid % ? = 0
ORDER BY rowid  -- the bootstrap's draws depend on the order: the log's, in every backend
"""



def try_catch_up(conn: sqlite3.Connection) -> int:
    """Roll up what is new; a read-only log (or a busy one) is read as it is."""
    try:
        return catch_up(conn)
    except sqlite3.OperationalError:
        return 0


def fine_counts(
    conn: sqlite3.Connection, since: float | None, until: float | None = None
) -> dict[FineKey, Counts]:
    """The window's requests, summed per (task, tier, model, policy, variant)."""
    hourly, histograms = window_rows(conn, since, until)
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    return fold(hourly, histograms, conn.execute(_FEEDBACK, (low, high)))


def route_stats(
    conn: sqlite3.Connection, *, since_s: float | None = 86400.0, by: By = "route",
    tier_order: Sequence[str] = (), now: float | None = None, roll_up: bool = True,
) -> dict[str, Any]:
    """`LogReader.route_stats`; `roll_up=False` reads without rolling up the new requests."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    if roll_up:
        try_catch_up(conn)
    since = window_start(since_s, now)
    groups = fine_counts(conn, since)
    named = misroute_counts(conn, since)
    stats = report(groups, since_s=since_s, now=now, by=by, tier_order=tier_order,
                   started=started)
    stats["refused"] = refused_counts(conn, since, now)
    stats["misroutes"] = named
    return stats


def misroute_counts(conn: sqlite3.Connection, since: float | None) -> dict[str, Any]:
    """The window's feedback naming the class its request really was (`quality.feedback`)."""
    return misroutes(conn.execute(_NAMED, (-math.inf if since is None else since, math.inf)))


_REFUSED = """
SELECT http_status, COUNT(*) FROM refused INDEXED BY refused_ts
WHERE ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1
"""


def refused_counts(conn: sqlite3.Connection, since: float | None, now: float) -> dict[str, Any]:
    """Requests refused before routing, by the status they got: apart from the routed
    requests, which the rows and totals count (a refusal had no decision to report on)."""
    rows = conn.execute(_REFUSED, (-math.inf if since is None else since, now + 1e-6))
    by_status = {str(status): int(n) for status, n in rows}
    return {"requests": sum(by_status.values()), "by_status": by_status}


_MINUTES = """
SELECT minute, requests, cost_usd, escalated, baseline_tokens_in, baseline_tokens_out
FROM route_minutely WHERE minute >= ? ORDER BY minute
"""


def hourly(
    conn: sqlite3.Connection, *, since_s: float | None, baseline_model: str,
    baseline_price: Price, now: float | None = None, step: timeseries.Step = "hour",
) -> dict[str, Any]:
    """`LogReader.timeseries`, from the hourly or minute rollups (brought up to date first)."""
    try_catch_up(conn)
    since = window_start(since_s, time.time() if now is None else now)
    step_s = timeseries.STEP_S[step]
    first = -math.inf if since is None else math.floor(since / step_s)
    rows = conn.execute(_HOURS if step == "hour" else _MINUTES, (first,))
    return timeseries.series(rows, baseline_model, baseline_price, step)


def ab_report(
    conn: sqlite3.Connection, *, since_s: float | None, tier_order: Sequence[str] = (),
    variants: Sequence[str] = (), now: float | None = None,
) -> dict[str, Any]:
    """`LogReader.ab_report`: the counts from the rollups, the bootstrap's per-request costs
    and latencies from evenly spaced rows of the log."""
    try_catch_up(conn)
    since = window_start(since_s, time.time() if now is None else now)
    counts = abtest.per_variant(fine_counts(conn, since), tier_order)
    names = abtest.variant_names(counts, variants)
    samples = {}
    if len(names) >= 2:
        low = -math.inf if since is None else since
        for name in names:
            rows = conn.execute(
                _SAMPLES, (name, low, abtest.sample_stride(counts[name].requests))).fetchall()
            answered = [r[1] for r in rows if r[2] in ("ok", "unchecked")]
            samples[name] = ([r[0] for r in rows], answered)
    return abtest.compare(counts, names, samples)


# The shadow decisions' facts summed per `shadow.ShadowRow` group: joined for decisions logged
# before migration 0012 (`counts.SHADOW_FACTS`), read off the row for the rest.
_SHADOW_FROM = {"from": "shadow_decisions s INDEXED BY shadow_facts", "low": "?", "high": "?"}
_SHADOW = f"""
SELECT policy, task, shadow_task, tier, shadow_tier, model, shadow_model, answered, COUNT(*),
       SUM(ok), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd), SUM(has_feedback), SUM(good),
       SUM(shadow_gate IS NOT NULL), SUM(shadow_gate = 'ok'), SUM(served_gate IS NOT NULL),
       SUM(served_gate = 'ok')
FROM ({SHADOW_FACTS.format(**_SHADOW_FROM)}
      UNION ALL {SHADOW_LOGGED_FACTS.format(**_SHADOW_FROM)})
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


def shadow_report(
    conn: sqlite3.Connection, *, since_s: float | None, prices: Mapping[str, Price],
    now: float | None = None,
) -> dict[str, Any]:
    """`LogReader.shadow_report`."""
    now = time.time() if now is None else now
    since = window_start(since_s, now)
    low, high = -math.inf if since is None else since, now + 1e-6
    rows = conn.execute(_SHADOW, (low, high, low, high))
    return shadow.report((shadow.ShadowRow.of(r) for r in rows), prices, since_s=since_s)
