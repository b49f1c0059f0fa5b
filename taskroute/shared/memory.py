"""Shared state kept in this process: the default for one process, and what a Redis-backed
state falls back to while Redis is down and the policy fails open."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

from taskroute.quality.budgets import Hold, Scope, Spend, SpendTracker
from taskroute.records import SharedSnapshot
from taskroute.session import InMemorySessionHistory, SessionHistory
from taskroute.shared.base import Lookup, OnReload, Prefetched


class LocalRate:
    """GCRA per key, as the Redis script computes it: `rpm` a minute, bursts up to `rpm`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}   # key → theoretical arrival time

    async def take(self, key: str, rpm: int, *, fail_closed: bool = False) -> float | None:
        return self.take_now(key, rpm)

    def take_now(self, key: str, rpm: int) -> float | None:
        now = self._clock()
        period = 60.0 / rpm
        tat = max(self._tat.get(key, now), now) + period
        allow_at = tat - rpm * period
        if now < allow_at:
            return math.ceil(allow_at - now)
        self._tat[key] = tat
        if len(self._tat) > 100_000:  # forget idle callers
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return None


class LocalSpend:
    """`SharedSpend` over a `Spend` of this process."""

    def __init__(self, spend: Spend) -> None:
        self.tracker = spend

    async def reserve(self, amount: float, *, user: str | None, key: str | None,
                      limits: Mapping[Scope, float], fail_closed: bool = False) -> Hold:
        return self.tracker.reserve(amount, user=user, key=key, limits=limits)

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        self.tracker.settle(hold, cost, user=user, key=key, now=now)


class LocalSessions:
    def __init__(self, history: SessionHistory) -> None:
        self.history = history

    def record_escalation(self, session_id: str) -> None:
        self.history.record_escalation(session_id)


class LocalBreakers:
    """One process: its own breakers are all there is."""

    def opened(self, deployment: str, cooldown_s: float) -> None:
        return None

    def open_for(self, deployment: str) -> float:
        return 0.0

    def on_heard(self, callback: Callable[[str, float], None]) -> None:
        return None  # nobody else to hear from


class LocalBroadcast:
    """One process: a reload reaches everyone already."""

    def __init__(self) -> None:
        self.callbacks: list[OnReload] = []

    async def publish_reload(self) -> None:
        return None

    def on_reload(self, callback: OnReload) -> None:
        self.callbacks.append(callback)


class MemoryState:
    """`SharedState` in this process's memory."""

    def __init__(self, history: SessionHistory | None = None,
                 spend: Spend | None = None) -> None:
        self.history = history or InMemorySessionHistory()
        self.local_rate = LocalRate()
        self.local_spend = LocalSpend(spend or SpendTracker())
        self.local_sessions = LocalSessions(self.history)
        self.local_breakers = LocalBreakers()
        self.local_broadcast = LocalBroadcast()

    @property
    def rate(self) -> LocalRate:
        return self.local_rate

    @property
    def spend(self) -> LocalSpend:
        return self.local_spend

    @property
    def sessions(self) -> LocalSessions:
        return self.local_sessions

    @property
    def breakers(self) -> LocalBreakers:
        return self.local_breakers

    @property
    def broadcast(self) -> LocalBroadcast:
        return self.local_broadcast

    @property
    def description(self) -> str:
        return "memory (this process)"

    async def prefetch(self, lookup: Lookup) -> Prefetched:
        return self.prefetch_now(lookup)

    def prefetch_now(self, lookup: Lookup) -> Prefetched:
        retry = (self.local_rate.take_now(lookup.rate_key, lookup.rpm)
                 if lookup.rate_key is not None and lookup.rpm else None)
        if retry is not None:
            return Prefetched(SharedSnapshot(), retry)
        escalations = (self.history.escalations(lookup.session, lookup.window_s)
                       if lookup.session else 0)
        tracker = self.local_spend.tracker
        spent = {scope: tracker.spent(scope) for scope in lookup.scopes}
        return Prefetched(SharedSnapshot(escalations, spent))

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
