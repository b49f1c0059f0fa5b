"""Hourly rollups of the SQLite request log, so the stats over a million requests take
milliseconds.

Requests are written once and never change, so each one is added into `route_hourly` (sums per
hour and route), `route_latency_hourly` (log-scale latency and first-token histograms) and, for
the last two days, `route_minutely` (totals per minute, for the dashboard) exactly once:
`catch_up` adds every request after the last rowid it processed, in one transaction per chunk,
and records where it stopped in `rollup_state`. A report reads whole hours from the
rollups and the requests outside them (the start of the window, anything not yet rolled up)
from the log itself, through the very same aggregation, so the numbers are exact either way.
"""

from __future__ import annotations

import math
import sqlite3
import time

from taskroute.quality.metrics import BUCKETS_PER_E
from taskroute.quality.timeseries import MINUTES_KEPT_S
from taskroute.store.counts import FINE, SUMS

STATE = "route_hourly"
CHUNK = 250_000

# One row per request with what its attempts say: the facts every metric is summed from, all in
# the covering index `requests_facts`. Rows logged before the counts were kept on the request
# (migration 0011) count their attempts instead (COALESCE evaluates that only when needed).
_COUNT = ("COALESCE(q.{col}, (SELECT COUNT(*) FROM attempts a INDEXED BY attempts_status "
          "WHERE a.request_id = q.request_id{status}))")
_FACTS = f"""
INSERT INTO temp.rq
SELECT q.ts, CAST(q.ts / 3600 AS INTEGER), q.task, q.tier, q.model, q.policy,
       COALESCE(q.variant, ''), q.status IN ('ok', 'unchecked'), q.escalated, q.cost_usd,
       q.input_tokens, q.output_tokens, q.latency_s, q.first_token_s,
       {_COUNT.format(col="n_attempts", status="")},
       {_COUNT.format(col="n_rejected", status=" AND a.status = 'rejected'")},
       {_COUNT.format(col="n_errors", status=" AND a.status = 'error'")},
       q.cached_input_tokens, q.cache_write_tokens, q.reasoning_tokens
FROM requests q
WHERE {{where}}
"""
_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS rq (
    ts REAL, hour INTEGER, task TEXT, tier TEXT, model TEXT, policy TEXT, variant TEXT, ok INT,
    escalated INT, cost_usd REAL, input_tokens INT, output_tokens INT, latency_s REAL,
    first_token_s REAL, n_attempts INT, n_rejected INT, n_errors INT, cached_input_tokens INT,
    cache_write_tokens INT, reasoning_tokens INT)
"""
_HOURLY = """
SELECT hour, task, tier, model, policy, variant, COUNT(*), SUM(ok),
       SUM(ok AND n_rejected = 0 AND n_errors = 0 AND escalated = 0), SUM(escalated),
       SUM(escalated AND n_rejected > 0), SUM(ok AND escalated = 0), SUM(cost_usd),
       SUM(n_attempts), SUM(n_errors), SUM(input_tokens), SUM(output_tokens),
       SUM(input_tokens * 1.0 / MAX(n_attempts, 1)), SUM(output_tokens * 1.0 / MAX(n_attempts, 1)),
       SUM(cached_input_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), MIN(ts), MAX(ts)
FROM temp.rq WHERE true GROUP BY 1, 2, 3, 4, 5, 6
"""
_BUCKET = f"CAST(ln({{col}} * 1000.0 + 1.0) * {BUCKETS_PER_E} AS INTEGER)"
_HISTOGRAMS = f"""
SELECT hour, task, tier, model, policy, variant, 'latency', {_BUCKET.format(col="latency_s")},
       COUNT(*)
FROM temp.rq WHERE ok GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT hour, task, tier, model, policy, variant, 'first_token',
       {_BUCKET.format(col="first_token_s")}, COUNT(*)
FROM temp.rq WHERE ok AND first_token_s IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
"""
_UPSERT_HOURLY = (
    f"INSERT INTO route_hourly (hour, {', '.join(FINE)}, {', '.join(SUMS)}, first_ts, last_ts) "
    f"{_HOURLY} ON CONFLICT (hour, {', '.join(FINE)}) DO UPDATE SET "
    + ", ".join(f"{s} = {s} + excluded.{s}" for s in SUMS)
    + ", first_ts = MIN(first_ts, excluded.first_ts), last_ts = MAX(last_ts, excluded.last_ts)"
)
_UPSERT_HISTOGRAMS = (
    f"INSERT INTO route_latency_hourly (hour, {', '.join(FINE)}, kind, bucket, n) "
    f"SELECT * FROM ({_HISTOGRAMS}) WHERE true "
    f"ON CONFLICT (hour, {', '.join(FINE)}, kind, bucket) DO UPDATE SET n = n + excluded.n"
)


# The dashboard's recent minutes: totals only, kept `MINUTES_KEPT_S` (older ones are deleted as
# new ones come in, so the table stays under 3,000 rows).
_UPSERT_MINUTELY = """
INSERT INTO route_minutely (minute, requests, cost_usd, escalated, baseline_tokens_in,
                            baseline_tokens_out)
SELECT CAST(ts / 60 AS INTEGER), COUNT(*), SUM(cost_usd), SUM(escalated),
       SUM(input_tokens * 1.0 / MAX(n_attempts, 1)), SUM(output_tokens * 1.0 / MAX(n_attempts, 1))
FROM temp.rq WHERE ts >= ? GROUP BY 1
ON CONFLICT (minute) DO UPDATE SET requests = requests + excluded.requests,
    cost_usd = cost_usd + excluded.cost_usd, escalated = escalated + excluded.escalated,
    baseline_tokens_in = baseline_tokens_in + excluded.baseline_tokens_in,
    baseline_tokens_out = baseline_tokens_out + excluded.baseline_tokens_out
"""


def last_rolled(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT last_rowid FROM rollup_state WHERE name = ?", (STATE,)).fetchone()
    return int(row[0]) if row else 0


def catch_up(conn: sqlite3.Connection, *, chunk: int = CHUNK) -> int:
    """Roll up every request not rolled up yet; returns how many. Safe to run from several
    processes: each chunk re-reads where the last one stopped inside its own transaction."""
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = last_rolled(conn)
            top = conn.execute("SELECT MAX(rowid) FROM requests").fetchone()[0] or 0
            end = min(top, start + chunk)
            if end <= start:
                conn.execute("COMMIT")
                return done
            _materialize(conn, "q.rowid > ? AND q.rowid <= ?", (start, end))
            conn.execute(_UPSERT_HOURLY)
            conn.execute(_UPSERT_HISTOGRAMS)
            oldest = time.time() - MINUTES_KEPT_S  # the dashboard's minutes: two days
            conn.execute(_UPSERT_MINUTELY, (oldest,))
            conn.execute("DELETE FROM route_minutely WHERE minute < ?", (oldest // 60,))
            conn.execute(
                "INSERT INTO rollup_state (name, last_rowid) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_rowid = excluded.last_rowid", (STATE, end))
            done += int(conn.execute("SELECT COUNT(*) FROM temp.rq").fetchone()[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _materialize(conn: sqlite3.Connection, where: str, params: tuple[float, ...]) -> None:
    conn.execute(_TEMP)
    conn.execute("DELETE FROM temp.rq")
    _more(conn, where, params)


def _more(conn: sqlite3.Connection, where: str, params: tuple[float, ...]) -> None:
    conn.execute(_FACTS.format(where=where), params)


def window_rows(
    conn: sqlite3.Connection, since: float | None, until: float | None = None
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Hourly sums and histogram rows covering exactly the requests with since <= ts < until:
    whole hours from the rollups, the rest from the log."""
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    last = last_rolled(conn)
    first_hour = -math.inf if since is None else math.ceil(low / 3600)
    end_hour = math.inf if until is None else math.floor(high / 3600)
    hourly = conn.execute(
        f"SELECT hour, {', '.join(FINE)}, {', '.join(SUMS)}, first_ts, last_ts "
        "FROM route_hourly WHERE hour >= ? AND hour < ?", (first_hour, end_hour)).fetchall()
    histograms = conn.execute(
        f"SELECT 0, {', '.join(FINE)}, kind, bucket, SUM(n) FROM route_latency_hourly "
        f"WHERE hour >= ? AND hour < ? GROUP BY {', '.join(FINE)}, kind, bucket",
        (first_hour, end_hour)).fetchall()
    conn.execute(_TEMP)
    conn.execute("DELETE FROM temp.rq")
    edges: list[tuple[float, float]] = []
    if since is not None:
        edges.append((low, min(high, first_hour * 3600)))
    if until is not None and end_hour * 3600 > low:
        edges.append((max(low, end_hour * 3600), high))
    for start, stop in edges:
        if start < stop:
            _more(conn, "q.ts >= ? AND q.ts < ? AND q.rowid <= ?", (start, stop, last))
    # what is not rolled up yet, found by rowid (`+` keeps the planner off the ts index)
    _more(conn, "q.rowid > ? AND +q.ts >= ? AND +q.ts < ?", (last, low, high))
    hourly.extend(conn.execute(_HOURLY).fetchall())
    histograms.extend(conn.execute(_HISTOGRAMS).fetchall())
    conn.execute("DELETE FROM temp.rq")
    return hourly, histograms
