"""Past one process: throughput and overhead for 1 worker + SQLite, N workers + SQLite and
N workers + Postgres + Redis (N = this machine's cores), side by side in one run.

    .venv/bin/python bench/scale.py [--requests 1500] [--max-seconds 10] [--workers N]

Starts the stand-in upstream (SIMULATED, answers instantly), then for each setup `taskroute
serve` on a fresh log, with a per-key rate limit and daily budgets set (high enough never to
refuse) so that every request pays for the shared state: the one round trip before deciding,
the budget reservation and its settlement — in this process's memory (1 worker), in the
workers' SQLite counters file (N workers + SQLite), in Redis (N workers + Postgres + Redis;
its own private redis-server and PostgreSQL cluster, started here, skipped with a message when
not installed). The same aiohttp load at concurrency 1 and 32 goes to the upstream directly and
to each setup: req/s, p50/p99 latency, and the overhead over the upstream directly. Bounded in
requests and seconds per scenario. The shared-state round trip alone: bench/redis_driver.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import UPSTREAM_MODEL, Result, bench_policy, load
from bench.processes import OUT, Processes

KEY = "sk-bench-not-a-real-key"
BUDGETS = "\nbudgets:\n  per user: 1000000\n  per key: 1000000\n  per day: 1000000\n"


def setups(workers: int, stack: ExitStack) -> list[tuple[str, list[str]]]:
    found = [("1 x sqlite", ["--db", str(OUT / "scale_1.db")]),
             (f"{workers} x sqlite", ["--workers", str(workers), "--db", str(OUT / "scale_n.db")])]
    from tests.servers import PostgresCluster, RedisServer, pg_bin, redis_available

    if pg_bin() is None or not redis_available():
        print("N workers + Postgres + Redis skipped: needs Debian's postgresql and "
              "redis-server (apt-get install -y postgresql redis-server)")
        return found
    try:
        import asyncpg  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        print("N workers + Postgres + Redis skipped: pip install 'taskroute[postgres,redis]'")
        return found
    pg = stack.enter_context(PostgresCluster.started(fsync=True))
    server = stack.enter_context(RedisServer())
    found.append((f"{workers} x pg+redis", ["--workers", str(workers), "--db",
                                            pg.new_database(), "--redis", server.url]))
    return found


def report(results: list[Result], direct: dict[int, Result]) -> None:
    print(f"\n{'setup':<16} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'overhead p50':>13} {'p99':>8}")
    for r in results:
        base = direct[r.concurrency]
        print(f"{r.target:<16} {r.concurrency:>3} {r.rps:>8.0f} {r.p50:>8.2f} "
              f"{r.pct(r.latencies, 0.99):>8.2f} {r.p50 - base.p50:>13.2f} "
              f"{r.pct(r.latencies, 0.99) - base.pct(base.latencies, 0.99):>8.2f}"
              + (f"   ({r.errors} errors)" if r.errors else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="per scenario")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("scale_*.db*"):
        old.unlink()
    with ExitStack() as stack:
        upstream = stack.enter_context(Processes()).stand_in(OUT / "upstream.log")
        if upstream is None:
            return 1
        policy = bench_policy(upstream)
        policy.write_text(policy.read_text() + BUDGETS)
        env = {"TASKROUTE_API_KEYS": KEY}
        print(f"{args.requests} requests per scenario, at most {args.max_seconds:.0f} s each; "
              f"{os.cpu_count()} cores; upstream: SIMULATED, answers instantly", flush=True)
        direct = {c: asyncio.run(load("direct", upstream + "/v1/chat/completions",
                                      UPSTREAM_MODEL, stream=False, concurrency=c,
                                      total=args.requests, max_seconds=args.max_seconds))
                  for c in (1, 32)}
        results = []
        for name, extra in setups(args.workers, stack):
            log = OUT / f"scale_{name.replace(' ', '_').replace('+', '_')}.log"
            with Processes() as setup:
                gateway = setup.taskroute(policy, log, "--rate-limit", "1000000000", *extra,
                                          env=env, seconds=60)
                if gateway is None:
                    continue
                for c in (1, 32):
                    result = asyncio.run(load(
                        name, gateway + "/v1/chat/completions", "auto",
                        stream=False, concurrency=c, total=args.requests,
                        max_seconds=args.max_seconds))
                    print(f"  {name:<16} c={c:<3} {result.rps:7.0f} req/s", flush=True)
                    results.append(result)
        report(results, direct)
    return 0


if __name__ == "__main__":
    sys.exit(main())
