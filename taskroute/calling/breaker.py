"""A circuit breaker per model deployment.

closed ──N consecutive failures──▶ open ──cool-down passed──▶ half-open (one probe call)
  ▲                                  ▲                              │
  └────────── probe succeeded ───────┼──────── probe failed ────────┘

While open, the call path skips the deployment (failing over, or escalating). A cancelled
call (a race or hedge loser) counts neither way; a cancelled probe frees the probe slot.

With a `BreakerBoard` shared by replicas (Redis), a breaker that opens tells the others, and a
closed breaker whose deployment another replica found down stays shut for the rest of that
replica's cool-down: one replica's discovery spares the rest their failing calls.

Every trip goes into a bounded `TripHistory` (shared by the routers of one process, so it
outlives a reload): which deployment, when, why, when it may be tried again and when it closed
— trips announced by other replicas too, marked as theirs. The dashboard shows it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from taskroute.shared.base import BreakerBoard

BreakerState = Literal["closed", "open", "half_open"]
TRIPS_KEPT = 200
REASON_CHARS = 200


@dataclass(slots=True)
class Trip:
    """One opening of a deployment's breaker (wall-clock unix seconds)."""

    deployment: str
    opened_at: float
    reason: str
    retry_at: float                 # when the cool-down ends and a probe may go
    by: Literal["here", "replica"] = "here"
    closed_at: float | None = None  # a probe succeeded (None: not yet, or not known here)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TripHistory:
    """The last `kept` trips, newest last; old ones fall off."""

    def __init__(self, kept: int = TRIPS_KEPT, *,
                 wall: Callable[[], float] = time.time) -> None:
        self._trips: deque[Trip] = deque(maxlen=kept)
        self._wall = wall

    def opened(self, deployment: str, reason: str, cooldown_s: float,
               by: Literal["here", "replica"] = "here") -> Trip:
        now = self._wall()
        trip = Trip(deployment, now, reason[:REASON_CHARS], now + cooldown_s, by)
        self._trips.append(trip)
        return trip

    def heard(self, deployment: str, cooldown_s: float) -> None:
        """Another replica's breaker for `deployment` opened (its shared-state news)."""
        self.opened(deployment, "opened by another replica", cooldown_s, by="replica")

    def closed(self, trip: Trip) -> None:
        trip.closed_at = self._wall()

    def recent(self, limit: int | None = None) -> list[Trip]:
        """Newest first."""
        trips = list(reversed(self._trips))
        return trips if limit is None else trips[:limit]


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic,
        deployment: str = "", board: BreakerBoard | None = None,
        trips: TripHistory | None = None,
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._deployment, self._board = deployment, board
        self._trips = trips
        self._trip: Trip | None = None  # the open trip, closed by the next success

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
        if self._trip is not None and self._trips is not None:
            self._trips.closed(self._trip)
        self._trip = None

    def failure(self, reason: str = "") -> None:
        """`reason`: what the failing call got (for the trip history)."""
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            why = (f"the probe failed: {reason}" if self._probing
                   else f"failed: {reason}" if self._failures == 1
                   else f"{self._failures} failures in a row; the last: {reason}")
            self._opened_at = self._clock()
            if self._trips is not None:
                self._trip = self._trips.opened(self._deployment, why.rstrip(": "),
                                                self.cooldown_s)
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
        board: BreakerBoard | None = None, trips: TripHistory | None = None,
    ) -> None:
        self._failures, self._cooldown_s, self._clock = failures, cooldown_s, clock
        self._board = board
        self.trips = trips if trips is not None else TripHistory()
        self._by_deployment: dict[str, CircuitBreaker] = {}

    def __getitem__(self, deployment: str) -> CircuitBreaker:
        breaker = self._by_deployment.get(deployment)
        if breaker is None:
            breaker = self._by_deployment[deployment] = CircuitBreaker(
                self._failures, self._cooldown_s, clock=self._clock, deployment=deployment,
                board=self._board, trips=self.trips)
        return breaker

    def states(self) -> dict[str, BreakerState]:
        return {name: b.state for name, b in self._by_deployment.items()}
