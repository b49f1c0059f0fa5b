"""Deleting the PostgreSQL log's old rows, one bounded batch per transaction (the Postgres twin
of `sqlite_prune`), so the writers' commits go on around it.

The hourly rollups are brought up to date first and are kept, so the reports over pruned hours
still count those requests; a request still listed in `unrolled` (not summed yet: a replica
rolling it up right now, or one written after the catch-up) is not deleted. Unlike SQLite's
rowid, `requests.id` is an identity that never hands a number out twice, so the newest request
need not stay. Rows another replica's prune holds are skipped (`SKIP LOCKED`), not waited for.
"""

from __future__ import annotations

import asyncpg

from taskroute.store.postgres_reads import catch_up

# A request's attempts go with it (ON DELETE CASCADE).
_REQUESTS = """
DELETE FROM requests WHERE request_id IN (
    SELECT request_id FROM requests q WHERE ts < $1
    AND NOT EXISTS (SELECT 1 FROM unrolled u WHERE u.request_id = q.request_id)
    ORDER BY ts LIMIT $2 FOR UPDATE SKIP LOCKED)
"""
# (table, its time column, its key).
_TABLES = (("feedback", "request_ts", "request_id"), ("refused", "ts", "request_id"),
           ("shadow_decisions", "ts", "request_id"), ("breaker_trips", "opened_at", "id"))


async def prune(conn: asyncpg.Connection, *, before: float, batch: int) -> int:
    """Delete up to `batch` rows older than `before` from each of the log's tables; the
    largest count deleted from any one table (under `batch`: nothing older is left)."""
    await catch_up(conn)
    async with conn.transaction():  # one transaction for the batch
        most = _count(await conn.execute(_REQUESTS, before, batch))
        for table, column, key in _TABLES:
            status = await conn.execute(  # names from _TABLES, never input
                f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                f"WHERE {column} < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)", before, batch)
            most = max(most, _count(status))
    return most


def _count(status: str) -> int:
    return int(status.split()[-1])  # "DELETE n"
