"""The circuit breakers' trips as the log keeps them (`breaker_trips`, one row per trip): the
row both backends write and read, and how many are kept.

A row is written when the trip opens and again, by the same replica, when it closes; both are
upserts keyed by the trip's id that never clear a closing time already there, so the two may
land in either order (a spool replaying the opening late, say). After each write the
deployment's rows past the newest `KEPT_PER_DEPLOYMENT` are deleted: a flapping deployment
cannot grow the table, and the gateway's history (the newest 200 of all) is always there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from taskroute.records import Trip

TRIP_COLUMNS = ("id", "deployment", "opened_at", "reason", "retry_at", "closed_at", "replica")
KEPT_PER_DEPLOYMENT = 200


def trip_row(trip: Trip) -> tuple[Any, ...]:
    """`TRIP_COLUMNS` of `trip` as it is now (a copy: the trip may close later)."""
    return (trip.id, trip.deployment, trip.opened_at, trip.reason, trip.retry_at,
            trip.closed_at, trip.replica)


def trip_from_row(row: Sequence[Any]) -> Trip:
    trip_id, deployment, opened_at, reason, retry_at, closed_at, replica = row
    return Trip(deployment, float(opened_at), reason, float(retry_at),
                closed_at=None if closed_at is None else float(closed_at), id=trip_id,
                replica=replica)


def merged(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """One row per trip id, a closing time kept from any of them (a batch may hold a trip's
    opening and its closing: one upsert statement may touch a row only once)."""
    by_id: dict[Any, tuple[Any, ...]] = {}
    for row in rows:
        before = by_id.get(row[0])
        closed_at = row[5] if row[5] is not None else None if before is None else before[5]
        by_id[row[0]] = (*row[:5], closed_at, *row[6:])
    return list(by_id.values())
