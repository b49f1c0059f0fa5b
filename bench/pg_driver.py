"""Which async PostgreSQL driver for the request log's hot path: asyncpg or psycopg 3?

    python bench/pg_driver.py [--rows 20000] [--batch 64] [--singles 2000] [--rounds 3]

Starts its own private cluster (Debian's postgresql, fsync on, as a server would run) on a free
loopback port and measures, for each driver, side by side in one run and in alternating rounds:
  - batched inserts: `--rows` request-shaped rows (a ~1 KB decision each) in group commits of
    `--batch` rows, one transaction each, `ON CONFLICT DO NOTHING` as the store writes them —
    by executemany (pipelined in both drivers) and by one `INSERT … SELECT unnest(arrays)`;
  - single-row round trips: `--singles` one-row inserts, each its own commit, p50 and p99.
The store uses whichever is faster on the hot path (see taskroute/store/postgres.py). Last, the
rows per second the store itself sustains: `--callers` concurrent callers each logging a
gateway-shaped request (`PostgresStore.add`, then `await acknowledged()`: committed, fsync'd).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import psycopg

from tests.servers import PostgresCluster

COLUMNS = ("request_id", "ts", "api", "status", "task", "tier", "model", "answered_by",
           "cost_usd", "input_tokens", "output_tokens", "latency_s", "decision")
TYPES = ("text", "float8", "text", "text", "text", "text", "text", "text", "float8", "int8",
         "int8", "float8", "text")
DDL = ("CREATE TABLE IF NOT EXISTS bench_requests ("
       + ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, TYPES, strict=True))
       + ", PRIMARY KEY (request_id))")
DECISION = json.dumps({"reasons": ["The policy sends this class to its tier." * 4] * 4,
                       "signals": {f"s{i}": i for i in range(30)}})
NUMBERED = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
INSERT_PG = (f"INSERT INTO bench_requests ({', '.join(COLUMNS)}) VALUES ({NUMBERED}) "
             "ON CONFLICT DO NOTHING")
INSERT_PSY = (f"INSERT INTO bench_requests ({', '.join(COLUMNS)}) "
              f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT DO NOTHING")
UNNEST = ", ".join(f"${i}::{t}[]" for i, t in enumerate(TYPES, 1))
UNNEST_PG = (f"INSERT INTO bench_requests ({', '.join(COLUMNS)}) SELECT * FROM unnest({UNNEST}) "
             "ON CONFLICT DO NOTHING")
UNNEST_PSY = (f"INSERT INTO bench_requests ({', '.join(COLUMNS)}) SELECT * FROM unnest("
              + ", ".join(f"%s::{t}[]" for t in TYPES) + ") ON CONFLICT DO NOTHING")

Row = tuple[Any, ...]


def rows(prefix: str, n: int) -> list[Row]:
    now = time.time()
    return [(f"{prefix}-{i:09d}", now + i * 1e-3, "openai", "ok", "summarize", "cheap",
             "openai/gpt-4o-mini", "openai/gpt-4o-mini", 0.00042, 400, 250, 0.8, DECISION)
            for i in range(n)]


def columns_of(batch: Sequence[Row]) -> list[list[Any]]:
    return [list(col) for col in zip(*batch, strict=True)]


async def asyncpg_many(conn: asyncpg.Connection, batch: Sequence[Row]) -> None:
    async with conn.transaction():
        await conn.executemany(INSERT_PG, batch)


async def asyncpg_unnest(conn: asyncpg.Connection, batch: Sequence[Row]) -> None:
    await conn.execute(UNNEST_PG, *columns_of(batch))  # one statement: its own transaction


async def psycopg_many(conn: psycopg.AsyncConnection[Any], batch: Sequence[Row]) -> None:
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(INSERT_PSY, batch)


async def psycopg_unnest(conn: psycopg.AsyncConnection[Any], batch: Sequence[Row]) -> None:
    async with conn.transaction():
        await conn.execute(UNNEST_PSY, columns_of(batch))


async def batched(write: Callable[[Any, Sequence[Row]], Awaitable[None]], conn: Any,
                  data: list[Row], size: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(data), size):
        await write(conn, data[i:i + size])
    return len(data) / (time.perf_counter() - started)


async def singles(apg: asyncpg.Connection, psy: psycopg.AsyncConnection[Any], n: int,
                  prefix: str) -> dict[str, list[float]]:
    """One-row inserts, each its own commit, the two drivers taking turns row by row (so the
    disk's moods fall on both alike)."""
    times: dict[str, list[float]] = {"asyncpg": [], "psycopg": []}
    for a, p in zip(rows(f"{prefix}-a", n), rows(f"{prefix}-p", n), strict=True):
        started = time.perf_counter()
        await apg.execute(INSERT_PG, *a)
        middle = time.perf_counter()
        await psy.execute(INSERT_PSY, p)
        times["asyncpg"].append(middle - started)
        times["psycopg"].append(time.perf_counter() - middle)
    return times


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(url: str, args: argparse.Namespace) -> None:
    apg = await asyncpg.connect(url)
    psy = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=0)
    await apg.execute(DDL)
    rates: dict[str, list[float]] = {}
    one_row: dict[str, list[float]] = {"asyncpg": [], "psycopg": []}
    ways: list[tuple[str, Callable[[Any, Sequence[Row]], Awaitable[None]], Any]] = [
        ("asyncpg executemany", asyncpg_many, apg), ("psycopg executemany", psycopg_many, psy),
        ("asyncpg unnest", asyncpg_unnest, apg), ("psycopg unnest", psycopg_unnest, psy)]
    for round_ in range(args.rounds):
        for name, write, conn in ways if round_ % 2 == 0 else ways[::-1]:
            data = rows(f"{name.replace(' ', '-')}-{round_}", args.rows)
            rates.setdefault(name, []).append(await batched(write, conn, data, args.batch))
        await apg.execute("TRUNCATE bench_requests")
        for name, times in (await singles(apg, psy, args.singles, f"one-{round_}")).items():
            one_row[name] += times
        await apg.execute("TRUNCATE bench_requests")
    print(f"batched inserts: {args.rows:,} rows in commits of {args.batch}, "
          f"median of {args.rounds} rounds (rows/s)")
    for name, got in rates.items():
        print(f"  {name:<22} {statistics.median(got):>10,.0f}")
    print(f"single-row insert + commit round trip, {args.singles * args.rounds:,} each (ms)")
    for name, times in one_row.items():
        print(f"  {name:<22} p50 {pct(times, 0.5):6.3f}   p99 {pct(times, 0.99):6.3f}")
    await apg.close()
    await psy.close()


async def store_rate(url: str, spool: Path, entries: int, callers: int) -> None:
    from taskroute.store.postgres import PostgresStore
    from tests.store.test_sqlite import make_entry

    store = PostgresStore(url, spool_dir=spool)
    made = [make_entry(f"store-{i:07d}", escalate=i % 5 == 0) for i in range(entries)]
    waits: list[float] = []

    async def caller(k: int) -> None:
        for entry in made[k::callers]:
            started = time.perf_counter()
            store.add(entry)
            await store.acknowledged()
            waits.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = time.perf_counter() - started
    spooled = store.spool.spooled
    await store.aclose()
    print(f"PostgresStore, {callers} callers each add + await acknowledged(), {entries:,} "
          f"requests: {entries / elapsed:,.0f} rows/s; acknowledged p50 {pct(waits, 0.5):.2f} ms "
          f"p99 {pct(waits, 0.99):.2f} ms; spooled {spooled}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=32)
    args = parser.parse_args()
    with PostgresCluster.started(fsync=True) as pg:
        asyncio.run(run(pg.url, args))
        asyncio.run(store_rate(pg.new_database(), pg.root / "spool", args.entries, args.callers))


if __name__ == "__main__":
    main()
