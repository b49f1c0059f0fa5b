"""How big does the request log get, with retention on and off?

    python bench/log_size.py [--per-day 2000] [--days 40] [--keep-days 10]

Writes `--per-day` requests a simulated day for `--days` days through `SqliteStore.add` (the
gateway's path: journal, group commit), each like a gateway request of the default policy (a
decision with its reasons, two attempts with gate verdicts, a user, a session, a key; prompt and
answer text not logged, as by default), into two logs: one pruned at the end of each day with
`log keep: <keep-days>d` (`retention.prune_once`, batches of 500) and one never pruned. Prints
each log's size on disk (database + WAL, after a checkpoint) and in bytes per request written
and per request kept, and extrapolates to a million requests: without retention the log grows
by that much per million requests, forever; with it, it holds only the horizon's requests, so
its size is bytes-per-kept-request x the requests within the horizon. The figures are from this
bounded run, extrapolated linearly (SQLite's size is linear in rows at this scale).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sqlite3
import tempfile
import time
from pathlib import Path

from taskroute.records import Attempt, GateVerdict, RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store.base import LogEntry
from taskroute.store.retention import prune_once
from taskroute.store.sqlite import SqliteStore

DAY = 86400.0
PROMPTS = ("summarize this meeting for the team", "extract the dates as JSON: ...",
           "why does this traceback (most recent call last) happen", "hello there")


def entries(router: Router) -> list[LogEntry]:
    """One entry per prompt kind, escalated once, to copy with new ids and times."""
    made = []
    for prompt in PROMPTS:
        decision = router.decide(ChatRequest.from_prompt(prompt))
        attempts = [
            Attempt(model=decision.model, deployment=decision.model, role="first",
                    status="rejected", started_at=0.0, latency_s=0.41, first_token_s=0.12,
                    input_tokens=420, output_tokens=180, cost_usd=0.000456,
                    verdicts=(GateVerdict("non_empty", True), GateVerdict(
                        "not_truncated", False, "finish_reason length"))),
            Attempt(model=decision.chain[-1], deployment=decision.chain[-1], role="escalation",
                    status="ok", started_at=0.0, latency_s=1.3, first_token_s=0.35,
                    input_tokens=420, output_tokens=260, cost_usd=0.00312,
                    verdicts=(GateVerdict("non_empty", True),)),
        ]
        record = RouteRecord("req-x", decision, attempts=attempts,
                             answered_by=decision.chain[-1], latency_s=1.71,
                             first_token_s=0.47)
        made.append(LogEntry(record=record, api="openai", user="user-1234",
                             session_id="sess-5678", api_key_id="3f9a1c2b7d4e"))
    return made


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")
               if not p.name.endswith(tuple(f"-ack.{i}" for i in range(10))))


async def fill(db: Path, per_day: int, days: int, keep_days: float | None) -> tuple[int, int]:
    """(bytes on disk, requests kept) after the run."""
    store = SqliteStore(db)
    templates = entries(Router.default(classifier=False))
    start = time.time() - days * DAY
    n = 0
    for day in range(days):
        for i in range(per_day):
            template = templates[n % len(templates)]
            record = dataclasses.replace(template.record, request_id=f"req-{n:012d}",
                                         started_at=start + day * DAY + i * DAY / per_day)
            store.add(dataclasses.replace(template, record=record))
            n += 1
            if n % 500 == 0:
                await store.flush()
        await store.flush()
        if keep_days is not None:
            await prune_once(store, keep_days * DAY, now=start + (day + 1) * DAY, pause_s=0)
    await store.aclose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kept = int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
    return size(db), kept


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--keep-days", type=float, default=10)
    args = parser.parse_args()
    written = args.per_day * args.days
    with tempfile.TemporaryDirectory() as tmp:
        for label, keep in (("retention off", None), (f"log keep: {args.keep_days:g}d",
                                                      args.keep_days)):
            t0 = time.perf_counter()
            on_disk, kept = await fill(Path(tmp) / f"{'on' if keep else 'off'}.db",
                                       args.per_day, args.days, keep)
            took = time.perf_counter() - t0
            print(f"{label}: {written:,} requests written over {args.days} days, "
                  f"{kept:,} kept, {on_disk / 1e6:.1f} MB on disk ({took:.1f} s)")
            print(f"  {on_disk / written:,.0f} B per request written, "
                  f"{on_disk / kept:,.0f} B per request kept")
            print(f"  extrapolated: {on_disk / kept * 1e6 / 1e9:.2f} GB per million requests "
                  f"kept" + ("; the log stops growing once the horizon is full"
                             if keep else "; the log grows this much per million, forever"))


if __name__ == "__main__":
    asyncio.run(main())
