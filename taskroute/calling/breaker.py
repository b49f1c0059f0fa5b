"""A circuit breaker per model deployment.

closed ──N consecutive failures──▶ open ──cool-down passed──▶ half-open (one probe call)
  ▲                                  ▲                              │
  └────────── probe succeeded ───────┼──────── probe failed ────────┘

While open, the call path skips the deployment (failing over, or escalating). A cancelled
call (a race or hedge loser) counts neither way; a cancelled probe frees the probe slot.

With a `BreakerBoard` shared by replicas (Redis), a breaker that opens tells the others, and a
closed breaker whose deployment another replica found down stays shut for the rest of that
replica's cool-down: one replica's discovery spares the rest their failing calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from taskroute.shared.base import BreakerBoard

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic,
        deployment: str = "", board: BreakerBoard | None = None,
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._deployment, self._board = deployment, board

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            if self._board is not None and self._board.open_for(self._deployment) > 0:
                return "open"  # another replica found it down
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._clock()
            if self._board is not None:
                self._board.opened(self._deployment, self.cooldown_s)
        self._probing = False

    def release(self) -> None:
        """A call ended without a verdict on the deployment (it was cancelled)."""
        self._probing = False


class Breakers:
    """One breaker per deployment, made on first use."""

    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic,
        board: BreakerBoard | None = None,
    ) -> None:
        self._failures, self._cooldown_s, self._clock = failures, cooldown_s, clock
        self._board = board
        self._by_deployment: dict[str, CircuitBreaker] = {}

    def __getitem__(self, deployment: str) -> CircuitBreaker:
        breaker = self._by_deployment.get(deployment)
        if breaker is None:
            breaker = self._by_deployment[deployment] = CircuitBreaker(
                self._failures, self._cooldown_s, clock=self._clock, deployment=deployment,
                board=self._board)
        return breaker

    def states(self) -> dict[str, BreakerState]:
        return {name: b.state for name, b in self._by_deployment.items()}
