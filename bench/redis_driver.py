"""Which Redis driver for the shared state's hot path: redis-py asyncio with hiredis parsing the
replies, or with its pure-Python parser? And what the round trip before deciding adds.

    python bench/redis_driver.py [--trips 3000] [--rounds 3]

Starts its own redis-server (persistence off) on a free loopback port and times, for each
parser side by side in alternating rounds, `RedisState.prefetch` — the one round trip the
gateway makes before deciding (one script: the GCRA rate-limit token, the session's escalation
count and today's spend in three budget scopes) — and `reserve` (the atomic budget script, the one
other round trip on the way in). p50 and p99 in ms; for comparison the SQLite counters file
`serve --workers` shares without Redis (a BEGIN IMMEDIATE transaction on a thread each) and the
in-memory state; and,
for the record, the same reads as a pipeline of five commands (the first design). Target
(issue 13): the prefetch's p50 under 0.3 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from taskroute.shared.base import Lookup
from taskroute.shared.memory import MemoryState
from taskroute.shared.redis_state import RedisState
from taskroute.shared.sqlite_state import SqliteState
from tests.servers import RedisServer

PARSERS: dict[str, Any] = {"hiredis": _AsyncHiredisParser, "python": _AsyncRESP2Parser}
LOOKUP = Lookup(rate_key="key-bench", rpm=10_000_000, session="session-bench", window_s=900,
                scopes=(("day", ""), ("user", "u-bench"), ("key", "key-bench")))
LIMITS = {("day", ""): 1e12, ("user", "u-bench"): 1e12, ("key", "key-bench"): 1e12}
TIME_CAP_S = 60.0


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def timed(op: Callable[[], Awaitable[Any]], trips: int, deadline: float) -> list[float]:
    samples: list[float] = []
    for _ in range(trips):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - t0)
    return samples


async def pipelined(state: RedisState) -> list[Any]:
    """The first design: the rate-limit script, the count and three HMGETs in one pipeline."""
    from taskroute.shared.redis_spend import scope_key

    client = state._client
    async with client.pipeline(transaction=False) as pipe:
        await state._rate._script(keys=["taskroute:rate:key-bench"], args=[0.006, 10_000_000],
                                  client=pipe)
        pipe.zcount("taskroute:session:session-bench", time.time() - 900, "+inf")
        for scope in LOOKUP.scopes:
            pipe.hmget(scope_key(scope, time.time()), "s", "h")
        replies: list[Any] = await pipe.execute()
        return replies


def prefetch_of(state: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: state.prefetch(LOOKUP)


def reserve_of(state: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: state.spend.reserve(
        0.0001, user="u-bench", key="key-bench", limits=LIMITS)


def pipeline_of(state: RedisState) -> Callable[[], Awaitable[Any]]:
    return lambda: pipelined(state)


async def main(trips: int, rounds: int) -> None:
    deadline = time.monotonic() + TIME_CAP_S
    results: dict[str, dict[str, list[float]]] = {}
    with RedisServer() as server:
        states = {}
        for name, parser in PARSERS.items():
            state = RedisState(server.url)
            state._client.connection_pool.connection_kwargs["parser_class"] = parser
            await state.start()
            states[name] = state
        memory = MemoryState()
        folder = Path(tempfile.mkdtemp(prefix="taskroute-bench-"))
        counters = SqliteState(folder / "shared.db")  # what `serve --workers` shares sans Redis
        await counters.start()
        states_any: dict[str, Any] = {**states, "sqlite file": counters, "memory": memory}
        for state in states_any.values():  # warm: scripts loaded, connections open
            await timed(prefetch_of(state), 200, deadline)
        for _ in range(rounds):
            for name, state in states_any.items():
                got = results.setdefault(name, {"prefetch": [], "reserve": [], "pipeline": []})
                got["prefetch"] += await timed(prefetch_of(state), trips, deadline)
                got["reserve"] += await timed(reserve_of(state), trips // 3, deadline)
                if isinstance(state, RedisState):
                    got["pipeline"] += await timed(pipeline_of(state), trips // 3, deadline)
        for state in states.values():
            assert state.fallbacks == 0, "Redis fell over during the bench"
            await state.aclose()
        await counters.aclose()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'state / parser':<16} {'prefetch p50':>13} {'p99':>8} {'reserve p50':>12} "
          f"{'p99':>8} {'5-cmd pipeline p50':>19} {'p99':>8}   (ms, {trips} x {rounds} "
          "prefetches each, loopback)")
    for name, got in results.items():
        p50, p99 = quantiles(got["prefetch"])
        r50, r99 = quantiles(got["reserve"])
        pipe = (f"{quantiles(got['pipeline'])[0]:>19.3f} {quantiles(got['pipeline'])[1]:>8.3f}"
                if got["pipeline"] else f"{'-':>19} {'-':>8}")
        print(f"{name:<16} {p50:>13.3f} {p99:>8.3f} {r50:>12.3f} {r99:>8.3f} {pipe}")
    hi = quantiles(results["hiredis"]["prefetch"])[0]
    py = quantiles(results["python"]["prefetch"])[0]
    print(f"\nhiredis / python prefetch p50: {hi / py:.2f}; target p50 < 0.3 ms: "
          f"{'met' if max(hi, py) < 0.3 else 'NOT met'} (hiredis {hi:.3f} ms, python "
          f"{py:.3f} ms; the redis extra installs no hiredis)")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.trips, args.rounds))
