"""The Protocols of shared state, one per concern, and what a request asks of them.

Deciding stays pure and synchronous: what it reads from shared state (the session's
escalations, today's spend per budget scope) is fetched before it by `SharedState.prefetch`, in
one round trip that also takes the request's rate-limit token, and handed to `decide` as a
`SharedSnapshot` in the request's context. Admission (`SharedSpend.reserve`) is the one other
round trip on the way in; settling, escalations and breaker news go out in the background.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from taskroute.quality.budgets import Hold, Scope
from taskroute.records import SharedSnapshot

OnReload = Callable[[], Awaitable[None]]
HOLD_TTL_S = 900.0      # a budget hold unsettled this long is freed: past any request's timeouts
SWEEP_EVERY_S = 30.0    # how often a replica looks for such holds (jittered; sooner for a short
                        # hold expiry)


def sweep_interval(hold_ttl_s: float) -> float:
    """Seconds between sweeps, so a hold is freed within about half its expiry after it."""
    return min(SWEEP_EVERY_S, hold_ttl_s / 2)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one request needs fetched before deciding."""

    rate_key: str | None = None       # who the rate limit counts (a key's fingerprint)
    rpm: int | None = None            # requests per minute allowed to `rate_key`
    session: str | None = None
    window_s: float = 900.0           # the policy's session window
    scopes: tuple[Scope, ...] = ()    # the budget scopes whose spend decide reads
    fail_closed: bool = False         # the policy's `shared state: when down: fail closed`


@dataclass(frozen=True, slots=True)
class Prefetched:
    snapshot: SharedSnapshot
    retry_after: float | None = None  # the rate limit refused it: seconds until one passes


class RateLimit(Protocol):
    async def take(self, key: str, rpm: int, *, fail_closed: bool = False) -> float | None:
        """Take one request's token: None when allowed, else the seconds to wait."""
        ...


class SharedSpend(Protocol):
    """`Spend`'s admission and settlement, atomic across replicas."""

    async def reserve(self, amount: float, *, user: str | None, key: str | None,
                      limits: Mapping[Scope, float], fail_closed: bool = False) -> Hold:
        """Hold `amount` in every scope at once; `BudgetExhausted` if one would pass."""
        ...

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        """Swap the hold for the cost (may complete in the background, exactly once)."""
        ...


class SharedSessions(Protocol):
    def record_escalation(self, session_id: str) -> None:
        """Note that a session's request escalated (in the background)."""
        ...


class BreakerBoard(Protocol):
    """Open breakers as every replica knows them."""

    def opened(self, deployment: str, cooldown_s: float) -> None:
        """This process's breaker for `deployment` opened: tell the others."""
        ...

    def open_for(self, deployment: str) -> float:
        """Seconds the deployment stays open by another's word (0: not open)."""
        ...

    def on_heard(self, callback: Callable[[str, float], None]) -> None:
        """Call `callback(deployment, seconds)` whenever another replica's breaker opens (its
        news, or one found open on connecting): the trip history shows them."""
        ...


class Broadcast(Protocol):
    async def publish_reload(self) -> None:
        """Ask every other replica to reload its policy file."""
        ...

    def on_reload(self, callback: OnReload) -> None:
        """Run `callback` when another replica asks for a reload."""
        ...


class SharedState(Protocol):
    """The five concerns together, with the pipelined fetch before deciding."""

    @property
    def rate(self) -> RateLimit: ...

    @property
    def spend(self) -> SharedSpend: ...

    @property
    def sessions(self) -> SharedSessions: ...

    @property
    def breakers(self) -> BreakerBoard: ...

    @property
    def broadcast(self) -> Broadcast: ...

    @property
    def description(self) -> str:
        """Where the state lives, for people (no secrets: a URL's password is masked)."""
        ...

    async def prefetch(self, lookup: Lookup) -> Prefetched: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None:
        """Finish what is still going out (settlements), then close the connections."""
        ...
