"""One group commit to the PostgreSQL log: a batch of spool items (`postgres_spool.Item`) in one
transaction, each table in one statement — `INSERT … SELECT * FROM unnest(column arrays)`, the
fastest way bench/pg_driver.py found — and every insert `ON CONFLICT DO NOTHING`, so a batch
written twice (a commit whose reply was lost, then replayed from the spool) lands once.

A request inserted for the first time is also listed in `unrolled`, in the same statement, for
the hourly rollups to sum exactly once (`postgres_reads.catch_up`). A breaker trip is an upsert
that keeps a closing time, followed by its deployment's bound (`store.trips`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from taskroute.store.postgres_spool import Item
from taskroute.store.sqlite import (
    ATTEMPT_COLUMNS,
    REFUSED_COLUMNS,
    REQUEST_COLUMNS,
    SHADOW_COLUMNS,
    padded,
)
from taskroute.store.trips import KEPT_PER_DEPLOYMENT, TRIP_COLUMNS, merged

_T, _F, _I = "text", "float8", "int8"
REQUEST_TYPES = (
    _T, _F, _T, _I, _T, _T, _T, _T, _T, _F, _T, _T, _T, _I, _I, _T, _F, _F, _I, _I, _F, _F, _T,
    _T, _T, _T, _T, _T, _T, _F, _T, _I, _I, _I, _I, _T, _T, _I, _I, _I,
)
ATTEMPT_TYPES = (_T, _I, _T, _T, _T, _T, _F, _F, _F, _I, _I, _F, _T, _T, _I, _I, _I, _I)
REFUSED_TYPES = (_T, _F, _T, _T, _I, _T, _T, _T, _T, _T, _T, _T)
_B = "bool"
SHADOW_TYPES = (_T, _F, _T, _T, _T, _T, _T, _T, _T, _T, _B, _F, _T, _I, _I, _T, _T)
RESPONSE_COLUMNS = ("response_id", "request_id", "ts", "api_key_id", "conversation")
RESPONSE_TYPES = (_T, _T, _F, _T, _T)
TRIP_TYPES = (_T, _T, _F, _T, _F, _F, _T)


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join('"user"' if c == "user" else c for c in columns)


def _unnest(table: str, columns: Sequence[str], types: Sequence[str],
            on_conflict: str = "DO NOTHING") -> str:
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    return (f"INSERT INTO {table} ({_quoted(columns)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT {on_conflict}")


INSERT_REQUESTS = (
    f"WITH added AS ({_unnest('requests', REQUEST_COLUMNS, REQUEST_TYPES)} "
    "RETURNING request_id) INSERT INTO unrolled (request_id) SELECT request_id FROM added "
    "ON CONFLICT DO NOTHING"
)
INSERT_ATTEMPTS = _unnest("attempts", ATTEMPT_COLUMNS, ATTEMPT_TYPES)
INSERT_REFUSED = _unnest("refused", REFUSED_COLUMNS, REFUSED_TYPES)
INSERT_SHADOWS = _unnest("shadow_decisions", SHADOW_COLUMNS, SHADOW_TYPES)
INSERT_RESPONSES = _unnest("stored_responses", RESPONSE_COLUMNS, RESPONSE_TYPES)
UPSERT_TRIPS = _unnest("breaker_trips", TRIP_COLUMNS, TRIP_TYPES, "(id) DO UPDATE SET "
                       "closed_at = COALESCE(EXCLUDED.closed_at, breaker_trips.closed_at)")
TRIM_TRIPS = """
DELETE FROM breaker_trips WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY deployment ORDER BY opened_at DESC) AS n
        FROM breaker_trips WHERE deployment = ANY($1::text[])) ranked
    WHERE n > $2)
"""


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def write(conn: asyncpg.Connection, items: Sequence[Item]) -> None:
    """Commit `items` in one transaction (raises what the driver raises; nothing is kept)."""
    requests: list[Sequence[Any]] = []
    attempts: list[Sequence[Any]] = []
    refused: list[Sequence[Any]] = []
    shadows: list[Sequence[Any]] = []
    responses: list[Sequence[Any]] = []
    trips: list[Sequence[Any]] = []
    for kind, row, extra in items:
        if kind == "e":
            # spooled by an older version: its row lacks the columns appended since (nullable)
            requests.append(padded(row, REQUEST_COLUMNS))
            attempts.extend(padded(a, ATTEMPT_COLUMNS) for a in extra)
        elif kind == "r":
            refused.append(row)
        elif kind == "p":
            responses.append(row)
        elif kind == "t":
            trips.append(row)
        else:  # as requests: one spooled by an older version lacks the served facts
            shadows.append(padded(row, SHADOW_COLUMNS))
    async with conn.transaction():
        for sql, rows, width in ((INSERT_REQUESTS, requests, len(REQUEST_COLUMNS)),
                                 (INSERT_ATTEMPTS, attempts, len(ATTEMPT_COLUMNS)),
                                 (INSERT_REFUSED, refused, len(REFUSED_COLUMNS)),
                                 (INSERT_SHADOWS, shadows, len(SHADOW_COLUMNS)),
                                 (INSERT_RESPONSES, responses, len(RESPONSE_COLUMNS))):
            if rows:
                await conn.execute(sql, *_columns(rows, width))
        if trips:
            once = merged(trips)
            await conn.execute(UPSERT_TRIPS, *_columns(once, len(TRIP_COLUMNS)))
            await conn.execute(TRIM_TRIPS, sorted({row[1] for row in once}),
                               KEPT_PER_DEPLOYMENT)
