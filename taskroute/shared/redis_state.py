"""`SharedState` in Redis, for several replicas (`taskroute serve --redis redis://...`).

Before deciding, one round trip (one script: `redis_prefetch.py`) takes the rate-limit token
and reads the session's escalations and today's spend per scope; admission is one atomic
script. Settlements, escalations and breaker news go out in the background; a settlement that
cannot be sent is kept (bounded) and sent again when Redis answers, applied once by its hold's
id.

Redis down or slow (no answer in `OP_TIMEOUT_S`): the policy's `shared state: when down:`
chooses. `fail open` serves on this process's own counters (`fallback`, which always counts
what this process spent and saw), logs it (once per `LOG_EVERY_S`) and counts it
(`fallbacks`); `fail closed` refuses with 503 (`refusals`). After a failure Redis is not
asked again for `RETRY_S`, so a hung server costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from taskroute.exceptions import SharedStateUnavailable
from taskroute.quality.budgets import Hold, Scope, Spend, day_start, refusal, scopes_of
from taskroute.records import SharedSnapshot
from taskroute.session import SessionHistory
from taskroute.shared.base import HOLD_TTL_S, Lookup, Prefetched, sweep_interval
from taskroute.shared.memory import MemoryState
from taskroute.shared.redis_conn import connect, down_errors, masked
from taskroute.shared.redis_events import RedisBreakers, RedisEvents
from taskroute.shared.redis_prefetch import RedisPrefetch
from taskroute.shared.redis_rate import RedisRate
from taskroute.shared.redis_sessions import RedisSessionScripts
from taskroute.shared.redis_spend import RedisSpendScripts

log = logging.getLogger("taskroute.shared")
RETRY_S = 1.0
LOG_EVERY_S = 10.0
MAX_PENDING = 100_000

SEED = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 's', ARGV[i])
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]))
end
return 1
"""


class RedisState:
    def __init__(self, url: str, *, history: SessionHistory | None = None,
                 spend: Spend | None = None, hold_ttl_s: float = HOLD_TTL_S) -> None:
        self.url = url
        self.hold_ttl_s = hold_ttl_s   # how long a hold may go unsettled before a sweep frees it
        self._sweeper: asyncio.Task[None] | None = None
        self._client = connect(url)
        self.fallback = MemoryState(history, spend)
        self._rate = RedisRate(self._client)
        self._spend = RedisSpendScripts(self._client)
        self._sessions = RedisSessionScripts(self._client)
        self._seed = self._client.register_script(SEED)
        self._prefetch = RedisPrefetch(self._client)
        self._down = down_errors()
        self._random = random.Random()
        self.origin = f"{self._random.getrandbits(64):016x}"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: deque[Callable[[], Awaitable[Any]]] = deque()
        self._skip_until = 0.0
        self._logged_at = -LOG_EVERY_S
        self.fallbacks = 0     # requests served on this process's counters (fail open)
        self.refusals = 0      # requests refused with 503 (fail closed)
        self.lost = 0          # background writes dropped when the retry queue was full
        self._breakers = RedisBreakers(self._spawn_quiet, self._client)
        self._events = RedisEvents(lambda: connect(url, timeout_s=None), self._client,
                                   self._breakers, self.origin)

    # -- the five concerns ------------------------------------------------------------------------

    @property
    def rate(self) -> RedisState:
        return self

    @property
    def spend(self) -> RedisState:
        return self

    @property
    def sessions(self) -> RedisState:
        return self

    @property
    def breakers(self) -> RedisBreakers:
        return self._breakers

    @property
    def broadcast(self) -> RedisEvents:
        return self._events

    @property
    def description(self) -> str:
        return f"redis ({masked(self.url)})"

    # -- before deciding: one round trip ----------------------------------------------------------

    async def prefetch(self, lookup: Lookup) -> Prefetched:
        rate = lookup.rate_key is not None and bool(lookup.rpm)
        if not (rate or lookup.session or lookup.scopes):
            return Prefetched(SharedSnapshot())
        if self._skipping(lookup.fail_closed):
            return self.fallback.prefetch_now(lookup)
        now = time.time()
        try:
            retry, escalations, spent = await self._prefetch(
                lookup.rate_key, lookup.rpm, lookup.session, lookup.window_s, lookup.scopes,
                now)
        except self._down as exc:
            self._failed(exc, lookup.fail_closed)
            return self.fallback.prefetch_now(lookup)
        self._answered()
        return Prefetched(SharedSnapshot(escalations, dict(zip(lookup.scopes, spent,
                                                                strict=True))), retry)

    async def take(self, key: str, rpm: int, *, fail_closed: bool = False) -> float | None:
        if self._skipping(fail_closed):
            return self.fallback.local_rate.take_now(key, rpm)
        try:
            retry = await self._rate.take(key, rpm)
        except self._down as exc:
            self._failed(exc, fail_closed)
            return self.fallback.local_rate.take_now(key, rpm)
        self._answered()
        return retry

    # -- budgets ----------------------------------------------------------------------------------

    async def reserve(self, amount: float, *, user: str | None, key: str | None,
                      limits: Mapping[Scope, float], fail_closed: bool = False) -> Hold:
        if self._skipping(fail_closed):
            return await self.fallback.spend.reserve(amount, user=user, key=key, limits=limits)
        now = time.time()
        scopes = tuple(scopes_of(user, key))
        hold_id = f"{self._random.getrandbits(96):024x}"
        keys, args = self._spend.reserve_args(hold_id, amount, scopes, limits, now,
                                              self.hold_ttl_s)
        try:
            reply = await self._spend.reserve(keys=keys, args=args)
        except self._down as exc:
            self._failed(exc, fail_closed)
            return await self.fallback.spend.reserve(amount, user=user, key=key, limits=limits)
        self._answered()
        if int(reply[0]) != 0:
            scope = scopes[int(reply[0]) - 1]
            raise refusal(scope, limits[scope], float(reply[1]), float(reply[2]), now)
        return Hold(amount, scopes, day_start(now), where="redis", id=hold_id)

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        # this process's own books always count it (and free a hold taken in them while
        # Redis was down); the shared ones count it too, when Redis is back if need be
        in_redis = hold is not None and hold.where == "redis"
        self.fallback.local_spend.settle(None if in_redis else hold, cost, user=user, key=key,
                                         now=now)
        if not in_redis:
            hold = None
        now = time.time() if now is None else now
        held = hold.scopes if hold is not None else ()
        keys, args = self._spend.settle_args(
            hold.id if hold is not None else f"{self._random.getrandbits(96):024x}", held,
            hold.day if hold is not None else now, hold.amount if hold is not None else 0.0,
            scopes_of(user, key), cost, now)
        self._send(lambda: self._spend.settle(keys=keys, args=args))

    async def seed(self, spent: Mapping[Scope, float], now: float | None = None) -> bool:
        """Start today's shared spend from the log's (`LogReader.spend_today`) unless a
        replica already did today: the first to start seeds, the others find it done."""
        now = time.time() if now is None else now
        from taskroute.shared.redis_spend import TTL_S, day_tag, scope_key

        keys = [f"taskroute:seeded:{{{day_tag(now)}}}", *(scope_key(s, now) for s in spent)]
        try:
            return bool(await self._seed(keys=keys, args=[TTL_S, *spent.values()]))
        except self._down as exc:
            log.warning("shared state: could not seed today's spend in Redis (%s)", exc)
            return False

    # -- sessions ---------------------------------------------------------------------------------

    def record_escalation(self, session_id: str) -> None:
        self.fallback.history.record_escalation(session_id)
        self._send(lambda: self._sessions.record(session_id))

    # -- life -------------------------------------------------------------------------------------

    async def sweep(self, now: float | None = None) -> int:
        """Release holds no one settled in time (today's and yesterday's); how many."""
        now = time.time() if now is None else now
        from taskroute.shared.redis_spend import holds_key

        released = 0
        for day in (now, now - 86400):
            released += int(await self._spend.sweep(keys=[holds_key(day)]))
        return released

    async def _sweep_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(sweep_interval(self.hold_ttl_s) * (0.5 + self._random.random()))
            try:
                released = await self.sweep()
            except self._down:
                continue
            if released:
                log.warning("shared state: released %d budget holds that were never settled "
                            "(a replica stopped mid-request)", released)

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_now_and_then())
        self._events.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._events.connected.wait(), 2.0)
        if not self._events.connected.is_set():
            log.warning("shared state: Redis at %s does not answer yet; serving on this "
                        "process's own counters until it does", masked(self.url))

    async def aclose(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await self.drain()
        await self._events.aclose()
        await self._client.aclose()

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait (up to `timeout_s`) for the background writes, the queued ones included."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._pending and not self._skipping(False):
                self._spawn(self._flush())
            if not self._tasks and not self._pending:
                return
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
            else:
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- the machinery ----------------------------------------------------------------------------

    def _skipping(self, fail_closed: bool) -> bool:
        if time.monotonic() >= self._skip_until:
            return False
        self._fell_back(fail_closed, None)
        return True

    def _failed(self, exc: BaseException, fail_closed: bool) -> None:
        self._skip_until = time.monotonic() + RETRY_S
        self._fell_back(fail_closed, exc)

    def _fell_back(self, fail_closed: bool, exc: BaseException | None) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            what = ("refusing requests with 503 (the policy fails closed)" if fail_closed else
                    "serving on this process's own counters (the policy fails open)")
            log.warning("shared state: Redis at %s is down or slow%s; %s", masked(self.url),
                        f" ({type(exc).__name__}: {exc})" if exc else "", what)
        if fail_closed:
            self.refusals += 1
            raise SharedStateUnavailable(
                "the gateway's shared state (Redis) does not answer and the policy fails "
                "closed (shared state: when down: fail closed); retry shortly",
                retry_after=RETRY_S)
        self.fallbacks += 1

    def _answered(self) -> None:
        if self._pending:
            self._spawn(self._flush())

    def _send(self, op: Callable[[], Awaitable[Any]]) -> None:
        if self._skipping_quiet():
            self._keep(op)
            return
        self._spawn(self._run(op))

    def _skipping_quiet(self) -> bool:
        return time.monotonic() < self._skip_until

    async def _run(self, op: Callable[[], Awaitable[Any]]) -> None:
        try:
            await op()
        except self._down:
            self._skip_until = time.monotonic() + RETRY_S
            self._keep(op)

    async def _flush(self) -> None:
        while self._pending:
            op = self._pending.popleft()
            try:
                await op()
            except self._down:
                self._pending.appendleft(op)
                self._skip_until = time.monotonic() + RETRY_S
                return

    def _keep(self, op: Callable[[], Awaitable[Any]]) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.lost += 1
            return
        self._pending.append(op)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_quiet(self, coro: Coroutine[Any, Any, Any]) -> None:
        """A background write whose loss costs little (breaker news): not retried."""
        async def quietly() -> None:
            with contextlib.suppress(*self._down):
                await coro

        self._spawn(quietly())
