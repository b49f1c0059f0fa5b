"""Switching a SQLite connection to WAL mode, as the request log and the workers' shared
counters file both do when several processes may open one new file together."""

from __future__ import annotations

import sqlite3
import time


def wal_mode(conn: sqlite3.Connection, within_s: float = 5.0) -> None:
    """WAL mode. Processes opening a new file together (`serve --workers`) contend for the
    switch, and SQLite answers "locked" at once rather than waiting: try again, for a while
    (only while opening, before any event loop uses the connection)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
