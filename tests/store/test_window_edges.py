"""Stats read from the rollups equal a full raw scan of the log, on each backend: a window that
starts inside an hour, rows on and either side of its edges and of the hour boundaries, rows
rolled up and rows not yet, rows logged before the request row kept its attempt counts.

The raw scan is written here in plain Python over every row of `requests`, `attempts` and
`feedback`, as the metrics' definitions (`taskroute.quality.metrics`) read, so it shares none of
the stores' SQL; so are the misroute counts beside the stats, from the feedback naming a class
(`quality.feedback.feedback_task`, its field or its text)."""

from __future__ import annotations

import dataclasses
import math
import random
import sqlite3
from typing import Any

import pytest

from taskroute.quality.feedback import feedback_task, make_feedback
from taskroute.quality.metrics import BUCKETS_PER_E, BY_CHOICES, Counts, FineKey, report
from taskroute.store import postgres_reads, sqlite_reads
from taskroute.store.base import LogEntry
from taskroute.store.sqlite import SqliteStore, connect
from tests.store.test_postgres import POLICY, rounded, varied_entries

HOUR = 3600.0
WINDOW_S = 5 * HOUR + 1234.5  # ends mid-hour, starts mid-hour: both edges read from the log


def _times(now: float, n: int, rng: random.Random) -> list[float]:
    since = now - WINDOW_S  # as the stores compute it
    first_hour = math.ceil(since / HOUR) * HOUR
    now_hour = math.floor(now / HOUR) * HOUR
    edges = [since, since - 1e-6, math.nextafter(since, -math.inf),
             math.nextafter(since, math.inf), since + 0.5, first_hour,
             math.nextafter(first_hour, -math.inf), first_hour - 0.001, first_hour + HOUR,
             math.nextafter(first_hour + HOUR, -math.inf), now_hour,
             math.nextafter(now_hour, -math.inf), now, now + 30.0, since - 2 * HOUR]
    spread = [since - HOUR + rng.random() * (WINDOW_S + 2 * HOUR) for _ in range(n - len(edges))]
    return edges + spread


def _entries(now: float, n: int, seed: int) -> list[LogEntry]:
    rng = random.Random(seed)
    entries = varied_entries(n, seed=seed)
    return [dataclasses.replace(e, record=dataclasses.replace(e.record, started_at=ts))
            for e, ts in zip(entries, _times(now, n, rng), strict=True)]


async def _raw(store: Any, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as lite:
            return list(lite.execute(sql))
    import asyncpg

    pg = await asyncpg.connect(store.url)
    try:
        return [tuple(r) for r in await pg.fetch(sql)]
    finally:
        await pg.close()


async def _forget_counts(store: Any, request_ids: list[str]) -> None:
    """Make these rows look logged before migration 0011 / 0006 (no counts on the row)."""
    listed = ", ".join(f"'{r}'" for r in request_ids)
    await _raw(store, "UPDATE requests SET n_attempts = NULL, n_rejected = NULL, "
                      f"n_errors = NULL WHERE request_id IN ({listed})")


def _bucket(seconds: float) -> int:
    return math.floor(math.log(seconds * 1000.0 + 1.0) * BUCKETS_PER_E)


async def raw_scan(store: Any, since: float) -> dict[FineKey, Counts]:
    """The window's fine groups from every raw row (nothing rolled up is read)."""
    statuses: dict[str, list[str]] = {}
    for request_id, status in await _raw(store, "SELECT request_id, status FROM attempts"):
        statuses.setdefault(request_id, []).append(status)
    groups: dict[FineKey, Counts] = {}
    for (request_id, ts, task, tier, model, policy, variant, status, escalated, cost,
         tokens_in, tokens_out, latency, first_token, cached, cache_write,
         reasoning) in await _raw(store, (
            "SELECT request_id, ts, task, tier, model, policy, variant, status, escalated, "
            "cost_usd, input_tokens, output_tokens, latency_s, first_token_s, "
            "cached_input_tokens, cache_write_tokens, reasoning_tokens FROM requests")):
        if ts < since:
            continue
        c = groups.setdefault((task, tier, model, policy, variant or ""), Counts())
        tried = statuses.get(request_id, [])
        rejected, errors = tried.count("rejected"), tried.count("error")
        ok = status in ("ok", "unchecked")
        c.requests += 1
        c.completed += ok
        c.first_pass += ok and not rejected and not errors and not escalated
        c.escalated += bool(escalated)
        c.under_served += bool(escalated) and rejected > 0
        c.answered_unescalated += ok and not escalated
        c.cost_usd += cost
        c.attempts += len(tried)
        c.errors += errors
        c.input_tokens += tokens_in
        c.output_tokens += tokens_out
        c.cached_input_tokens += cached
        c.cache_write_tokens += cache_write
        c.reasoning_tokens += reasoning
        c.first_ts, c.last_ts = min(c.first_ts, ts), max(c.last_ts, ts)
        if ok:
            c.latency[_bucket(latency)] = c.latency.get(_bucket(latency), 0) + 1
            if first_token is not None:
                b = _bucket(first_token)
                c.first_token[b] = c.first_token.get(b, 0) + 1
    for (request_ts, task, tier, model, policy, variant, score, corrected, first_pass,
         unescalated) in await _raw(store, (
            "SELECT request_ts, task, tier, model, policy, variant, score, corrected, "
            "first_pass, unescalated FROM feedback")):
        if request_ts < since:
            continue
        c = groups.setdefault((task, tier, model, policy, variant), Counts())
        c.feedback += 1
        c.scored += score is not None
        c.score_sum += score or 0.0
        c.corrected += bool(corrected)
        c.corrected_first_pass += bool(corrected and first_pass)
        c.corrected_unescalated += bool(corrected and unescalated)
    return groups


async def raw_misroutes(store: Any, since: float) -> dict[str, Any]:
    """The window's misroute counts from every feedback row, in plain Python."""
    named, pairs = 0, dict[tuple[str, str], int]()
    for request_ts, served, task, text in await _raw(
            store, "SELECT request_ts, task, named_task, text FROM feedback"):
        really = feedback_task(task, text)
        if request_ts < since or really is None:
            continue
        named += 1
        if really != served:
            pairs[(served, really)] = pairs.get((served, really), 0) + 1
    ordered = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    return {"named": named, "misrouted": sum(pairs.values()),
            "pairs": [{"served": s, "named": t, "requests": n} for (s, t), n in ordered]}


async def _stats_without_rolling_up(store: Any, by: Any, now: float) -> dict[str, Any]:
    """The report as the store reads it, but what is not rolled up yet stays so (a reader
    always rolls up first, which would leave the log's tail path untested)."""
    options = {"since_s": WINDOW_S, "by": by, "tier_order": POLICY.tier_names, "now": now}
    if isinstance(store, SqliteStore):
        conn = connect(store.path)
        try:
            return sqlite_reads.route_stats(conn, roll_up=False, **options)
        finally:
            conn.close()
    import asyncpg

    pg = await asyncpg.connect(store.url)
    try:
        stats: dict[str, Any] = await postgres_reads.route_stats(pg, **options)
        return stats
    finally:
        await pg.close()


def _comparable(stats: dict[str, Any]) -> dict[str, Any]:
    same: dict[str, Any] = rounded({k: v for k, v in stats.items()
                                    if k not in ("query_ms", "refused", "misroutes")})
    return same


@pytest.mark.parametrize("seed", [5, 8])
async def test_rollup_stats_equal_a_raw_scan_at_the_windows_edges(
    log_store: Any, seed: int
) -> None:
    now = math.floor(random.Random(seed).uniform(1.7e9, 1.9e9) / HOUR) * HOUR + 2345.25
    entries = _entries(now, 260, seed)
    rolled, fresh = entries[:200], entries[200:]
    for entry in rolled:
        log_store.add(entry)
    await log_store.flush()
    rated = rolled[::11]
    for i, entry in enumerate(rated):  # a third name the class (some the one served), a third
        served = entry.record.decision.task  # by the text from before the field
        await log_store.add_feedback(make_feedback(
            entry.record.request_id, thumbs="down", corrected=True,
            task=(served if i % 2 else "coding", None, None)[i % 3],
            text=(None, "Task: qa", "wrong")[i % 3]))
    # rows logged before the counts were kept, among the rolled-up edge rows and the fresh tail
    await _forget_counts(log_store, [e.record.request_id for e in rolled[:15:2]])
    assert await log_store.catch_up() == len(rolled)
    for entry in fresh:
        log_store.add(entry)
    await log_store.flush()
    await _forget_counts(log_store, [e.record.request_id for e in fresh[::3]])

    since = now - WINDOW_S
    expected = await raw_scan(log_store, since)
    inside = sum(e.record.started_at >= since for e in entries)
    assert sum(c.requests for c in expected.values()) == inside
    assert 0 < inside < len(entries)  # the window leaves some out
    misroutes = await raw_misroutes(log_store, since)
    assert 0 < misroutes["misrouted"] < misroutes["named"]
    for by in BY_CHOICES:
        want = _comparable(report(await raw_scan(log_store, since), since_s=WINDOW_S, now=now,
                                  by=by, tier_order=POLICY.tier_names))
        stats = await _stats_without_rolling_up(log_store, by, now)
        assert _comparable(stats) == want, by
        assert stats["misroutes"] == misroutes, by
    for by in BY_CHOICES:  # and through the store, which rolls the tail up first
        want = _comparable(report(await raw_scan(log_store, since), since_s=WINDOW_S, now=now,
                                  by=by, tier_order=POLICY.tier_names))
        got = await log_store.route_stats(since_s=WINDOW_S, by=by,
                                          tier_order=POLICY.tier_names, now=now)
        assert _comparable(got) == want, by
        assert got["misroutes"] == misroutes, by
    assert await log_store.catch_up() == 0
