"""Deleting the log's old rows, one bounded batch per transaction (on the reader's thread and
connection, so the writer's commits wait at most one short batch, never a whole purge).

The precomputed hourly sums (`sqlite_rollup`) are brought up to date first and are kept, so the
reports over pruned hours still count those requests; a request they do not hold yet is not
deleted. The newest request always stays: the rollup's place in the log is a rowid, and SQLite
would hand out rowids again from 1 if the table were emptied.
"""

from __future__ import annotations

import sqlite3

from taskroute.store.sqlite_reads import try_catch_up
from taskroute.store.sqlite_rollup import STATE

# (table, its time column): a request's attempts go with it (ON DELETE CASCADE).
_TABLES = (("feedback", "request_ts"), ("refused", "ts"), ("shadow_decisions", "ts"),
           ("breaker_trips", "opened_at"))


def prune(conn: sqlite3.Connection, *, before: float, batch: int) -> int:
    """Delete up to `batch` rows older than `before` from each of the log's tables; the
    largest count deleted from any one table (under `batch`: nothing older is left)."""
    try_catch_up(conn)
    most = 0
    with conn:  # one transaction for the batch
        conn.execute("BEGIN IMMEDIATE")
        cursor = conn.execute(
            "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE ts < ? "
            "AND rowid < (SELECT MAX(rowid) FROM requests) AND rowid <= COALESCE("
            "(SELECT last_rowid FROM rollup_state WHERE name = ?), 0) ORDER BY ts LIMIT ?)",
            (before, STATE, batch))
        most = cursor.rowcount
        for table, column in _TABLES:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE rowid IN "  # names from _TABLES, never input
                f"(SELECT rowid FROM {table} WHERE {column} < ? LIMIT ?)", (before, batch))
            most = max(most, cursor.rowcount)
    return most
