"""The PostgreSQL log's rollups and reports: the SQL behind `LogReader`'s route stats, time
series and A/B report, as coroutines over one asyncpg connection.

As for SQLite (`sqlite_rollup`), each request is summed once into `route_hourly` and
`route_latency_hourly`; here the requests still to sum are the rows of `unrolled` (see
`postgres_migrations`), taken `FOR UPDATE SKIP LOCKED` so replicas rolling up together split
the work. A report runs in one REPEATABLE READ transaction — one snapshot, in which every
request is either rolled up or in `unrolled`, never both — and reads whole hours from the
rollups, the rest (the window's edges, what is not rolled up yet) from the log through the very
same aggregation, then hands the sums to `taskroute.quality` as every backend does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from taskroute.policy.model import Price
from taskroute.quality import abtest, shadow, timeseries
from taskroute.quality.feedback import misroutes
from taskroute.quality.metrics import BUCKETS_PER_E, By, Counts, FineKey, report
from taskroute.quality.window import window_start
from taskroute.store.counts import FINE, SHADOW_FACTS, SHADOW_LOGGED_FACTS, SUMS, fold

CHUNK = 100_000
_FINE = ", ".join(FINE)
_SUMS = ", ".join(SUMS)
_RQ = """
CREATE TEMP TABLE rq (
    ts float8, hour int8, task text, tier text, model text, policy text, variant text, ok bool,
    escalated int, cost_usd float8, input_tokens int8, output_tokens int8, latency_s float8,
    first_token_s float8, n_attempts int8, n_rejected int8, n_errors int8,
    cached_input_tokens int8, cache_write_tokens int8, reasoning_tokens int8
) ON COMMIT DROP
"""
# One row per request with what its attempts say: the facts every metric is summed from, all in
# the covering index `requests_facts`. Rows logged before the counts were kept on the request
# (migration 0006) count their attempts instead (COALESCE evaluates that only when needed).
_COUNT = ("COALESCE(q.{col}, (SELECT count(*) FROM attempts a "
          "WHERE a.request_id = q.request_id{status}))")
_FACTS = f"""
INSERT INTO rq
SELECT q.ts, floor(q.ts / 3600)::int8, q.task, q.tier, q.model, q.policy,
       COALESCE(q.variant, ''), q.status IN ('ok', 'unchecked'), q.escalated, q.cost_usd,
       q.input_tokens, q.output_tokens, q.latency_s, q.first_token_s,
       {_COUNT.format(col="n_attempts", status="")},
       {_COUNT.format(col="n_rejected", status=" AND a.status = 'rejected'")},
       {_COUNT.format(col="n_errors", status=" AND a.status = 'error'")},
       q.cached_input_tokens, q.cache_write_tokens, q.reasoning_tokens
FROM requests q
WHERE {{where}}
"""
# A report's few small queries: JIT compiling them cost more than running them (200 ms
# against a few, measured on a million-request log).
_NO_JIT = "SET LOCAL jit = off"
_HOURS_MAX = 2**62  # "no end" as an int8: a float bound would hide the hour index
_TAKE = f"""
WITH taken AS (
    DELETE FROM unrolled WHERE request_id IN (
        SELECT request_id FROM unrolled LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING request_id)
{_FACTS.format(where="q.request_id IN (SELECT request_id FROM taken)")}
"""
_HOURLY = """
SELECT hour, task, tier, model, policy, variant, count(*), count(*) FILTER (WHERE ok),
       count(*) FILTER (WHERE ok AND n_rejected = 0 AND n_errors = 0 AND escalated = 0),
       count(*) FILTER (WHERE escalated <> 0),
       count(*) FILTER (WHERE escalated <> 0 AND n_rejected > 0),
       count(*) FILTER (WHERE ok AND escalated = 0), sum(cost_usd), sum(n_attempts)::int8,
       sum(n_errors)::int8, sum(input_tokens)::int8, sum(output_tokens)::int8,
       sum(input_tokens::float8 / greatest(n_attempts, 1)),
       sum(output_tokens::float8 / greatest(n_attempts, 1)), sum(cached_input_tokens)::int8,
       sum(cache_write_tokens)::int8, sum(reasoning_tokens)::int8, min(ts), max(ts)
FROM rq GROUP BY 1, 2, 3, 4, 5, 6
"""
_BUCKET = f"floor(ln({{col}} * 1000.0 + 1.0) * {BUCKETS_PER_E})::int"
_HISTOGRAMS = f"""
SELECT hour, task, tier, model, policy, variant, 'latency', {_BUCKET.format(col="latency_s")},
       count(*)
FROM rq WHERE ok GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT hour, task, tier, model, policy, variant, 'first_token',
       {_BUCKET.format(col="first_token_s")}, count(*)
FROM rq WHERE ok AND first_token_s IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
"""
_UPSERT_HOURLY = (
    f"INSERT INTO route_hourly AS r (hour, {_FINE}, {_SUMS}, first_ts, last_ts) {_HOURLY} "
    f"ON CONFLICT (hour, {_FINE}) DO UPDATE SET "
    + ", ".join(f"{s} = r.{s} + excluded.{s}" for s in SUMS)
    + ", first_ts = least(r.first_ts, excluded.first_ts), "
    "last_ts = greatest(r.last_ts, excluded.last_ts)"
)
_UPSERT_HISTOGRAMS = (
    f"INSERT INTO route_latency_hourly AS r (hour, {_FINE}, kind, bucket, n) {_HISTOGRAMS} "
    f"ON CONFLICT (hour, {_FINE}, kind, bucket) DO UPDATE SET n = r.n + excluded.n"
)
_FEEDBACK = f"""
SELECT {_FINE}, count(*), count(score), sum(score), sum(corrected)::int8,
       count(*) FILTER (WHERE corrected <> 0 AND first_pass <> 0),
       count(*) FILTER (WHERE corrected <> 0 AND unescalated <> 0)
FROM feedback WHERE request_ts >= $1 AND request_ts < $2 GROUP BY 1, 2, 3, 4, 5
"""
_HOURS = """
SELECT hour, sum(requests)::int8, sum(cost_usd), sum(escalated)::int8, sum(baseline_tokens_in),
       sum(baseline_tokens_out)
FROM route_hourly WHERE hour >= $1 GROUP BY hour ORDER BY hour
"""
_SAMPLES = """
SELECT cost_usd, latency_s, status FROM requests
WHERE COALESCE(variant, '') = $1 AND ts >= $2 AND id % $3 = 0 ORDER BY id
"""
_REFUSED = """
SELECT http_status, count(*) FROM refused WHERE ts >= $1 AND ts < $2 GROUP BY 1 ORDER BY 1
"""
# As SQLite's (`sqlite_reads._NAMED`): ILIKE is its LIKE, case-insensitive; the first OR is
# the partial index `feedback_named`'s condition.
_NAMED = """
SELECT task, named_task, CASE WHEN named_task IS NULL THEN text END, count(*)
FROM feedback
WHERE request_ts >= $1 AND request_ts < $2 AND (named_task IS NOT NULL OR text IS NOT NULL)
  AND (named_task IS NOT NULL OR text ILIKE '%task%')
GROUP BY 1, 2, 3
"""


_UPSERT_MINUTELY = """
INSERT INTO route_minutely AS r (minute, requests, cost_usd, escalated, baseline_tokens_in,
                                 baseline_tokens_out)
SELECT floor(ts / 60)::int8, count(*), sum(cost_usd), sum(escalated),
       sum(input_tokens::float8 / greatest(n_attempts, 1)),
       sum(output_tokens::float8 / greatest(n_attempts, 1))
FROM rq WHERE ts >= $1 GROUP BY 1
ON CONFLICT (minute) DO UPDATE SET requests = r.requests + excluded.requests,
    cost_usd = r.cost_usd + excluded.cost_usd, escalated = r.escalated + excluded.escalated,
    baseline_tokens_in = r.baseline_tokens_in + excluded.baseline_tokens_in,
    baseline_tokens_out = r.baseline_tokens_out + excluded.baseline_tokens_out
"""


async def catch_up(conn: asyncpg.Connection, *, chunk: int = CHUNK) -> int:
    """Roll up every request not rolled up yet; returns how many. Safe beside other replicas
    doing the same: each chunk takes the rows nobody else has locked."""
    done = 0
    while True:
        async with conn.transaction():
            await conn.execute(_RQ)
            taken = int((await conn.execute(_TAKE, chunk)).split()[-1])
            if taken:
                await conn.execute(_UPSERT_HOURLY)
                await conn.execute(_UPSERT_HISTOGRAMS)
                oldest = time.time() - timeseries.MINUTES_KEPT_S
                await conn.execute(_UPSERT_MINUTELY, oldest)
                await conn.execute("DELETE FROM route_minutely WHERE minute < $1",
                                   int(oldest // 60))
        done += taken
        if taken < chunk:
            return done


async def fine_counts(
    conn: asyncpg.Connection, since: float | None, until: float | None = None
) -> dict[FineKey, Counts]:
    """The window's requests summed per (task, tier, model, policy, variant), since <= ts <
    until: whole hours from the rollups, the rest from the log. Inside a transaction."""
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    first_hour = -_HOURS_MAX if since is None else math.ceil(low / 3600)
    end_hour = _HOURS_MAX if until is None else math.floor(high / 3600)
    await conn.execute(_NO_JIT)
    hourly = [tuple(r) for r in await conn.fetch(
        f"SELECT hour, {_FINE}, {_SUMS}, first_ts, last_ts FROM route_hourly "
        "WHERE hour >= $1 AND hour < $2", first_hour, end_hour)]
    histograms = [tuple(r) for r in await conn.fetch(
        f"SELECT 0, {_FINE}, kind, bucket, sum(n)::int8 FROM route_latency_hourly "
        f"WHERE hour >= $1 AND hour < $2 GROUP BY {_FINE}, kind, bucket",
        first_hour, end_hour)]
    await conn.execute(_RQ)
    edges: list[tuple[float, float]] = []
    if since is not None:
        edges.append((low, min(high, first_hour * 3600)))
    if until is not None and end_hour * 3600 > low:
        edges.append((max(low, end_hour * 3600), high))
    rolled = "NOT EXISTS (SELECT 1 FROM unrolled u WHERE u.request_id = q.request_id)"
    for start, stop in edges:
        if start < stop:
            await conn.execute(_FACTS.format(where=f"q.ts >= $1 AND q.ts < $2 AND {rolled}"),
                               start, stop)
    await conn.execute(_FACTS.format(
        where="q.request_id IN (SELECT request_id FROM unrolled) AND q.ts >= $1 AND q.ts < $2"),
        low, high)
    hourly.extend(tuple(r) for r in await conn.fetch(_HOURLY))
    histograms.extend(tuple(r) for r in await conn.fetch(_HISTOGRAMS))
    feedback = [tuple(r) for r in await conn.fetch(_FEEDBACK, low, high)]
    return fold(hourly, histograms, feedback)


async def route_stats(
    conn: asyncpg.Connection, *, since_s: float | None = 86400.0, by: By = "route",
    tier_order: Sequence[str] = (), now: float | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    now = time.time() if now is None else now
    since = window_start(since_s, now)
    async with conn.transaction(isolation="repeatable_read"):
        groups = await fine_counts(conn, since)
        refused = await refused_counts(conn, since, now)
        named = await conn.fetch(_NAMED, -math.inf if since is None else since, math.inf)
    stats = report(groups, since_s=since_s, now=now, by=by, tier_order=tier_order,
                   started=started)
    stats["refused"] = refused
    stats["misroutes"] = misroutes((r[0], r[1], r[2], int(r[3])) for r in named)
    return stats


async def refused_counts(conn: asyncpg.Connection, since: float | None,
                         now: float) -> dict[str, Any]:
    rows = await conn.fetch(_REFUSED, -math.inf if since is None else since, now + 1e-6)
    by_status = {str(status): int(n) for status, n in rows}
    return {"requests": sum(by_status.values()), "by_status": by_status}


_MINUTES = """
SELECT minute, requests, cost_usd, escalated, baseline_tokens_in, baseline_tokens_out
FROM route_minutely WHERE minute >= $1 ORDER BY minute
"""


async def hourly(
    conn: asyncpg.Connection, *, since_s: float | None, baseline_model: str,
    baseline_price: Price, now: float | None = None, step: timeseries.Step = "hour",
) -> dict[str, Any]:
    """`LogReader.timeseries`, from the hourly or minute rollups (brought up to date by the
    caller)."""
    since = window_start(since_s, time.time() if now is None else now)
    step_s = timeseries.STEP_S[step]
    first = -_HOURS_MAX if since is None else math.floor(since / step_s)
    rows = await conn.fetch(_HOURS if step == "hour" else _MINUTES, first)
    return timeseries.series([tuple(r) for r in rows], baseline_model, baseline_price, step)


async def ab_report(
    conn: asyncpg.Connection, *, since_s: float | None, tier_order: Sequence[str] = (),
    variants: Sequence[str] = (), now: float | None = None,
) -> dict[str, Any]:
    since = window_start(since_s, time.time() if now is None else now)
    async with conn.transaction(isolation="repeatable_read"):
        counts = abtest.per_variant(await fine_counts(conn, since), tier_order)
        names = abtest.variant_names(counts, variants)
        samples = {}
        if len(names) >= 2:
            low = -math.inf if since is None else since
            for name in names:
                rows = await conn.fetch(_SAMPLES, name, low,
                                        abtest.sample_stride(counts[name].requests))
                answered = [r[1] for r in rows if r[2] in ("ok", "unchecked")]
                samples[name] = ([r[0] for r in rows], answered)
    return abtest.compare(counts, names, samples)


# As SQLite's (`sqlite_reads._SHADOW`): the facts of `counts.SHADOW_FACTS`, summed per group.
_SHADOW_FROM = {"from": "shadow_decisions s", "low": "$1", "high": "$2"}
_SHADOW = f"""
SELECT policy, task, shadow_task, tier, shadow_tier, model, shadow_model, answered, count(*),
       count(*) FILTER (WHERE ok), sum(tokens_in), sum(tokens_out), sum(cost_usd),
       count(*) FILTER (WHERE has_feedback), count(*) FILTER (WHERE good),
       count(shadow_gate), count(*) FILTER (WHERE shadow_gate = 'ok'), count(served_gate),
       count(*) FILTER (WHERE served_gate = 'ok')
FROM ({SHADOW_FACTS.format(**_SHADOW_FROM)}
      UNION ALL {SHADOW_LOGGED_FACTS.format(**_SHADOW_FROM)}) facts
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


async def shadow_report(
    conn: asyncpg.Connection, *, since_s: float | None, prices: Mapping[str, Price],
    now: float | None = None,
) -> dict[str, Any]:
    """`LogReader.shadow_report`."""
    now = time.time() if now is None else now
    since = window_start(since_s, now)
    rows = await conn.fetch(_SHADOW, -math.inf if since is None else since, now + 1e-6)
    return shadow.report((shadow.ShadowRow.of(r) for r in rows), prices, since_s=since_s)
