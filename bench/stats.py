"""How fast are the route-quality stats over a log of a million requests?

    python bench/stats.py [--requests 1000000] [--db PATH] [--rebuild] [--postgres] [--runs 5]

Builds (once, then reuses) a request log with the gateway's schema: a million requests over
the last 24 hours across the default policy's task classes and tiers, with attempts (gate
rejections, upstream errors, escalations), first-token times, two A/B variants and feedback on
5% of them (a tenth of it naming the class the request really was), and a shadow policy's
decision for 20% of them (one tier up). Then times
`SqliteStore.route_stats` (the `LogReader` Protocol, read on the store's worker thread) for every
`--by`, the dashboard's other reads (the time series per minute and per hour, the shadow
report), the `taskroute stats` command end to end (a fresh process), and `GET
/v1/taskroute/stats`, `/timeseries` and `/shadow` on a real server on 127.0.0.1. Target: under
1 s each.

With --postgres it then copies the same log into a private PostgreSQL cluster (Debian's, on a
free loopback port, removed afterwards), rolls it up once, and times `PostgresStore.route_stats`
for every `--by` and `taskroute stats --db postgresql://…` end to end. Each `taskroute stats`
command runs `--runs` times (p50 and the slowest printed), over the default 24 h window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from taskroute.policy.loader import load_default_policy
from taskroute.quality import shadow, timeseries
from taskroute.quality.metrics import BY_CHOICES
from taskroute.store.migrations import migrate
from taskroute.store.sqlite import REQUEST_COLUMNS, SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DB = Path("/tmp/taskroute-bench-stats.db")
FEEDBACK_COLUMNS = ("request_id", "ts", "score", "corrected", "text", "api_key_id",
                    "request_ts", "task", "tier", "model", "policy", "variant", "first_pass",
                    "unescalated")
_DECISION = json.dumps({"reasons": ["The policy sends this class to its tier." * 8] * 4,
                        "signals": {f"s{i}": i for i in range(40)}})


def build(path: Path, n: int, seed: int = 7) -> None:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        conn.execute(f"PRAGMA {pragma}")
    migrate(conn)
    # a log from before migration 0011 (the bench run against an older commit) lacks these
    counted = "n_attempts" in {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    # and one from before 0012 lacks the served facts beside each shadow decision
    shadow_facts = "served_task" in {
        row[1] for row in conn.execute("PRAGMA table_info(shadow_decisions)")}
    # and one from before 0013 has no feedback naming the task class a request really was
    named = "named_task" in {row[1] for row in conn.execute("PRAGMA table_info(feedback)")}
    policy = load_default_policy()
    rng = random.Random(seed)
    misroutes = random.Random(seed + 1)  # its own draws: the rest is the log older runs built
    tasks = list(policy.tasks.values())
    now = time.time()
    started = time.perf_counter()
    conn.execute("BEGIN")
    requests: list[tuple[object, ...]] = []
    attempts: list[tuple[object, ...]] = []
    feedback: list[tuple[object, ...]] = []
    shadows: list[tuple[object, ...]] = []
    for i in range(n):
        spec = tasks[i % len(tasks)]
        tier = policy.tier(spec.tier)
        if rng.random() < 0.15 and tier.name != policy.tiers[-1].name:  # adjust rules moved it
            tier = policy.tiers[policy.tier_index(tier.name) + 1]
        chain = tier.chain
        request_id = f"req-{i:012d}"
        ts = now - rng.random() * 86400
        rejected = rng.random() < 0.1
        error = rng.random() < 0.03
        models = [chain[0]] + ([chain[0]] if error else [])
        statuses = (["error"] if error else []) + (["rejected"] if rejected else ["ok"])
        if rejected:
            models.append(chain[1] if len(chain) > 1 else chain[0])
            statuses.append("ok")
        latency = rng.lognormvariate(-0.5 + 0.4 * policy.tier_index(tier.name), 0.5)
        cost = 0.0
        for seq, (model, status) in enumerate(zip(models, statuses, strict=True)):
            c = policy.models[model].price.cost(400, 250)
            cost += c
            attempts.append((request_id, seq, model, model, "first" if seq == 0 else "escalation",
                             status, ts, latency / len(models), None, 400, 250, c, "[]", None))
        answered = models[-1]
        requests.append((
            request_id, ts, "openai", 200, "ok", None, "default", spec.name, "rule", None,
            tier.name, chain[0], answered, 1, int(answered != chain[0]), None, cost, cost,
            400 * len(models), 250 * len(models), latency, latency * 0.3, f"user-{i % 5000}",
            None, "key-abc", _DECISION, None, None, "A" if i % 2 else "B",
            *((len(models), statuses.count("rejected"), statuses.count("error"))
              if counted else ()),
        ))
        if rng.random() < 0.05:
            first_pass = int(not rejected and not error)
            misrouted = misroutes.random() < 0.1  # a tenth name their class, half by the text
            really = tasks[(i + 1) % len(tasks)].name if misrouted else None
            text = (f"task: {really}" if really and (misroutes.random() < 0.5 or not named)
                    else None)
            feedback.append((request_id, ts + 5, float(rng.random() < 0.8),
                             int(rng.random() < 0.1), text, "key-abc", ts, spec.name, tier.name,
                             chain[0], "default", "A" if i % 2 else "B", first_pass,
                             int(not rejected),
                             *((really if text is None else None,) if named else ())))
        if i % 5 == 0:  # the shadow sends it one tier up
            up = policy.tiers[min(policy.tier_index(tier.name) + 1, len(policy.tiers) - 1)]
            shadows.append((request_id, ts, "candidate", spec.name, up.name, up.model, "{}",
                            *(_served_facts(spec.name, tier.name, chain[0], cost, models,
                                            statuses, up.model) if shadow_facts else ())))
        if len(requests) >= 20_000:
            _flush(conn, requests, attempts, feedback, shadows)
    _flush(conn, requests, attempts, feedback, shadows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    print(f"built {n:,} requests in {time.perf_counter() - started:.1f}s at {path} "
          f"({path.stat().st_size / 1e6:.0f} MB)")


def _flush(conn: sqlite3.Connection, requests: list[tuple[object, ...]],
           attempts: list[tuple[object, ...]], feedback: list[tuple[object, ...]],
           shadows: list[tuple[object, ...]]) -> None:
    counts = ("n_attempts", "n_rejected", "n_errors")
    columns = REQUEST_COLUMNS[:29] + (counts if requests and len(requests[0]) > 29 else ())
    conn.executemany(f"INSERT INTO requests ({', '.join(columns)}) "
                     f"VALUES ({', '.join('?' * len(columns))})", requests)
    conn.executemany(  # the columns named: later migrations added more, with defaults
        "INSERT INTO attempts (request_id, seq, model, deployment, role, status, started_at, "
        "latency_s, first_token_s, input_tokens, output_tokens, cost_usd, verdicts, error) "
        f"VALUES ({', '.join('?' * 14)})", attempts)
    named = ("named_task",) if feedback and len(feedback[0]) > len(FEEDBACK_COLUMNS) else ()
    conn.executemany(f"INSERT INTO feedback ({', '.join(FEEDBACK_COLUMNS + named)}) "
                     f"VALUES ({', '.join('?' * (len(FEEDBACK_COLUMNS) + len(named)))})",
                     feedback)
    if shadows:
        width = len(shadows[0])
        conn.executemany(f"INSERT INTO shadow_decisions VALUES ({', '.join('?' * width)})",
                         shadows)
    shadows.clear()
    requests.clear()
    attempts.clear()
    feedback.clear()


def _served_facts(task: str, tier: str, model: str, cost: float, models: list[str],
                  statuses: list[str], shadow_model: str) -> tuple[object, ...]:
    """What the gateway logs beside a shadow decision (`counts.served_facts`) for the request
    `build` made: every attempt 400 tokens in and 250 out, the last one answering."""
    def first_verdict(of: str) -> str | None:
        return next((status for m, status in zip(models, statuses, strict=True)
                     if m == of and status in ("ok", "rejected")), None)

    return (task, tier, model, 1, cost, models[-1], 400, 250, first_verdict(shadow_model),
            first_verdict(model))


def _report(label: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed * 1000:8.0f} ms  {'OK' if elapsed < 1 else 'SLOW'}")


def _timed_runs(label: str, fn: Callable[[], Any], runs: int) -> None:
    """`fn` run `runs` times one after another: p50 and the slowest (p99 for so few)."""
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        took.append(time.perf_counter() - started)
    p50 = statistics.median(took)
    print(f"  {label:<44} {p50 * 1000:8.0f} ms  {'OK' if p50 < 1 else 'SLOW'}  "
          f"(p50 of {runs}; slowest {max(took) * 1000:.0f} ms)")


async def _timed_async(label: str, read: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await read
    _report(label, started)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _reads(store: Any, settle: Callable[[], Awaitable[None]] | None = None) -> None:
    tiers = load_default_policy().tier_names
    # A fresh log has never been rolled up; the gateway rolls up as it goes (every few
    # seconds), so queries only ever fold in the recent tail. Timed apart from the queries.
    started = time.perf_counter()
    rolled = await store.catch_up()
    print(f"  one-time roll-up of {rolled:,} never-rolled-up requests: "
          f"{time.perf_counter() - started:.1f} s (not a query; the gateway keeps up as it logs)")
    if settle is not None:
        await _timed_async("route_stats(by=route), before VACUUM", store.route_stats(
            since_s=86400, by="route", tier_order=tiers))
        started = time.perf_counter()
        await settle()
        print(f"  VACUUM ANALYZE: {time.perf_counter() - started:.1f} s (autovacuum's work on a "
              "live log: the rolled-up queue emptied, the index-only scans' visibility map)")
    report: dict[str, Any] = {}
    for by in BY_CHOICES:
        report = await _timed_async(f"route_stats(by={by})", store.route_stats(
            since_s=86400, by=by, tier_order=tiers))
    print(f"    {len(report['rows'])} rows; total requests {report['total']['requests']:,}")
    policy = load_default_policy()
    model, price = timeseries.baseline(policy)
    for since_s, step in ((3600.0, "minute"), (6 * 3600.0, "minute"), (86400.0, "hour")):
        series = await _timed_async(
            f"timeseries(since={since_s / 3600:g}h, step={step})", store.timeseries(
                since_s=since_s, baseline_model=model, baseline_price=price, step=step))
    print(f"    {len(series['points'])} points; {sum(p['requests'] for p in series['points']):,}"
          " requests")
    shadowed = await _timed_async("shadow_report(since=24h)", store.shadow_report(
        since_s=86400, prices=shadow.prices(policy)))
    print(f"    {shadowed['policies'][0]['requests']:,} shadow decisions compared"
          if shadowed["policies"] else "    no shadow decisions")


async def _endpoint(store: SqliteStore) -> None:
    from aiohttp import ClientSession, web

    from taskroute.gateway.quality_api import standalone_app

    runner = web.AppRunner(standalone_app(store))
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with ClientSession() as session:
            for by in ("route", "policy"):
                started = time.perf_counter()
                async with session.get(
                    f"http://127.0.0.1:{port}/v1/taskroute/stats?since=24h&by={by}"
                ) as response:
                    body = await response.json()
                elapsed = time.perf_counter() - started
                print(f"  {'GET /v1/taskroute/stats?by=' + by:<44} {elapsed * 1000:8.0f} ms  "
                      f"{'OK' if elapsed < 1 else 'SLOW'}  ({body['total']['requests']:,} req)")
            for path in ("/v1/taskroute/timeseries?since=1h", "/v1/taskroute/timeseries?since=24h",
                         "/v1/taskroute/shadow?since=24h"):
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                _report("GET " + path, started)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=5,
                        help="times each `taskroute stats` command is run (p50 printed)")
    parser.add_argument("--postgres", action="store_true",
                        help="also time the same log in a private PostgreSQL cluster")
    args = parser.parse_args()
    if args.rebuild or not args.db.exists() or _count(args.db) != args.requests:
        build(args.db, args.requests)
    print(f"route stats over {_count(args.db):,} requests (window 24h):")
    store = SqliteStore(args.db)
    try:
        asyncio.run(_reads(store))
    finally:
        store.close()
    for label, extra in (("--json", ["--json"]), ("table", [])):
        command = [sys.executable, "-m", "taskroute", "stats", "--db", str(args.db), "--since",
                   "24h", *extra]
        _timed_runs(f"taskroute stats {label} (new process)", partial(
            subprocess.run, command, check=True, capture_output=True), args.runs)
    store = SqliteStore(args.db)
    try:
        asyncio.run(_endpoint(store))
    finally:
        store.close()
    if args.postgres:
        postgres(args.db, args.runs)


async def _copy_into(url: str, db: Path) -> None:
    """The SQLite log's requests, attempts, feedback and shadow decisions, copied into the
    Postgres log at `url` (migrated by opening a store first), every request left to roll
    up."""
    import asyncpg

    from taskroute.store.sqlite import ATTEMPT_COLUMNS, SHADOW_COLUMNS

    source = sqlite3.connect(db)
    feedback = FEEDBACK_COLUMNS + tuple(  # the copied log's own columns, migrated or not
        c for c in ("named_task",)
        if c in {row[1] for row in source.execute("PRAGMA table_info(feedback)")})
    conn = await asyncpg.connect(url)
    started = time.perf_counter()
    try:
        for table, columns in (("requests", REQUEST_COLUMNS), ("attempts", ATTEMPT_COLUMNS),
                               ("feedback", feedback), ("shadow_decisions", SHADOW_COLUMNS)):
            listed = ", ".join(f'"{c}"' for c in columns)
            cursor = source.execute(f"SELECT {listed} FROM {table}")
            while chunk := cursor.fetchmany(50_000):
                if table == "shadow_decisions":  # SQLite's 0/1 is PostgreSQL's boolean
                    ok = columns.index("served_ok")
                    chunk = [(*r[:ok], None if r[ok] is None else bool(r[ok]), *r[ok + 1:])
                             for r in chunk]
                await conn.copy_records_to_table(table, records=chunk, columns=list(columns))
        await conn.execute("INSERT INTO unrolled SELECT request_id FROM requests")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
        source.close()
    print(f"copied the log into PostgreSQL in {time.perf_counter() - started:.1f} s")


async def _vacuum(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def postgres(db: Path, runs: int) -> None:
    from taskroute.store.postgres import PostgresStore
    from tests.servers import PostgresCluster

    with PostgresCluster.started() as pg:
        url = pg.new_database()
        spool = Path(pg.root) / "spool"
        PostgresStore(url, spool_dir=spool).close()  # the schema
        asyncio.run(_copy_into(url, db))
        print(f"route stats over the same log in PostgreSQL 15 ({url}):")
        store = PostgresStore(url, spool_dir=spool)
        try:
            asyncio.run(_reads(store, partial(_vacuum, url)))
        finally:
            store.close()
        env = {**os.environ, "TASKROUTE_SPOOL_DIR": str(spool)}
        for label, extra in (("--json", ["--json"]), ("table", [])):
            command = [sys.executable, "-m", "taskroute", "stats", "--db", url, "--since", "24h",
                       *extra]
            _timed_runs(f"taskroute stats --db postgresql:// {label} (new process)", partial(
                subprocess.run, command, check=True, capture_output=True, env=env), runs)


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


if __name__ == "__main__":
    main()
