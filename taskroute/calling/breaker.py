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
— trips announced by other replicas too, marked as theirs. The dashboard shows it. Given the
request log (a store that is a `TripLog`), the history is kept there too: each trip this
process's breakers open is written, and its row updated when it closes (never a trip heard of
from another replica: that replica writes its own), and `load()` seeds the history from the log
when the gateway starts, so a restart or a replica started later shows the trips before it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from taskroute.records import Trip, TripBy

if TYPE_CHECKING:
    from taskroute.shared.base import BreakerBoard
    from taskroute.store.base import TripLog

logger = logging.getLogger(__name__)
BreakerState = Literal["closed", "open", "half_open"]
TRIPS_KEPT = 200
REASON_CHARS = 200
CLOCK_SKEW_S = 2.0  # between replicas' clocks, when news of a trip is matched to its row


def replica_name() -> str:
    """This process as the trips it writes name it: its host and pid (in a container the
    hostname is the container's, so replicas differ and a restarted one keeps its name)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _covers(trip: Trip, deployment: str, at: float) -> bool:
    """Is `trip` the one a replica's news of `deployment` at `at` is about? Within one
    cool-down a deployment trips once across replicas: the others' breakers stay shut on the
    news, so none of them trips it too."""
    return (trip.deployment == deployment
            and trip.opened_at - CLOCK_SKEW_S <= at <= trip.retry_at + CLOCK_SKEW_S)


class TripHistory:
    """The last `kept` trips, newest last; old ones fall off. With `log`, this process's own
    trips are written to it as they open and close, and `load()` reads back the newest."""

    def __init__(self, kept: int = TRIPS_KEPT, *,
                 wall: Callable[[], float] = time.time, log: TripLog | None = None,
                 replica: str | None = None) -> None:
        self._kept = kept
        self._trips: deque[Trip] = deque(maxlen=kept)
        self._wall = wall
        self._log = log
        self.replica = replica_name() if replica is None else replica

    @property
    def persisted(self) -> bool:
        """Whether trips are kept in the log (else in this process's memory only)."""
        return self._log is not None

    def opened(self, deployment: str, reason: str, cooldown_s: float,
               by: TripBy = "here") -> Trip:
        now = self._wall()
        trip = Trip(deployment, now, reason[:REASON_CHARS], now + cooldown_s, by,
                    id=uuid.uuid4().hex, replica=self.replica if by == "here" else "")
        self._trips.append(trip)
        if by == "here":
            self._write(trip)
        return trip

    def heard(self, deployment: str, cooldown_s: float) -> None:
        """Another replica's breaker for `deployment` opened (its shared-state news). A trip
        read from the log already (that replica's row, with its reason; or this process's own
        from before a restart, still open in shared state) is not listed twice."""
        now = self._wall()
        if any(t.replica and _covers(t, deployment, now) for t in self._trips):
            return
        self.opened(deployment, "opened by another replica", cooldown_s, by="replica")

    def closed(self, trip: Trip) -> None:
        trip.closed_at = self._wall()
        if trip.by == "here":
            self._write(trip)

    def recent(self, limit: int | None = None) -> list[Trip]:
        """Newest first."""
        trips = list(reversed(self._trips))
        return trips if limit is None else trips[:limit]

    async def load(self) -> int:
        """Seed the history from the log: its newest `kept` trips, written by this replica or
        any other, merged with those already here by time; how many were new. News heard
        before its replica's row was read gives way to the row. Without a log, nothing."""
        if self._log is None:
            return 0
        stored = await self._log.recent_trips(self._kept)
        return self._merge(stored)

    def _merge(self, stored: Iterable[Trip]) -> int:
        known = {t.id for t in self._trips}
        fresh = [replace(t, by="here" if t.replica == self.replica else "replica")
                 for t in stored if t.id not in known]
        kept = [t for t in self._trips
                if t.replica or not any(_covers(s, t.deployment, t.opened_at) for s in fresh)]
        merged = sorted([*fresh, *kept], key=lambda t: t.opened_at)
        self._trips = deque(merged[-self._kept:], maxlen=self._kept)
        return len(fresh)

    def _write(self, trip: Trip) -> None:
        if self._log is None:
            return
        try:
            self._log.add_trip(trip)
        except Exception:  # the log failing (closed, say) must not fail the call that tripped
            logger.warning("could not log the trip of %s", trip.deployment, exc_info=True)


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
