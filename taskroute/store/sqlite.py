"""The embedded request log: SQLite in WAL mode, written in batches by one background thread.

`add()` only appends the entry to a deque (no lock, no wake-up), so the event loop never waits on
the disk; the writer thread wakes every `interval_s` (or at once when asked to flush) and commits
whatever has queued up in one transaction. `flush()` returns once everything added before it is
committed; `aclose()` flushes and stops the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgspec

from taskroute.decision import Decision
from taskroute.store.base import LogEntry
from taskroute.store.migrations import migrate

log = logging.getLogger(__name__)

REQUEST_COLUMNS = (
    "request_id", "ts", "api", "http_status", "status", "error", "policy", "task",
    "task_source", "task_confidence", "tier", "model", "answered_by", "routed", "escalated",
    "race_winner", "estimated_cost_usd", "cost_usd", "input_tokens", "output_tokens",
    "latency_s", "first_token_s", "user", "session_id", "api_key_id", "decision", "prompt",
    "answer", "variant",
)
_INSERT_REQUEST = (
    f"INSERT OR REPLACE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (request_id, seq, model, deployment, role, status, started_at, "
    "latency_s, first_token_s, input_tokens, output_tokens, cost_usd, verdicts, error) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_INSERT_SHADOW = (
    "INSERT OR REPLACE INTO shadow_decisions (request_id, ts, policy, task, tier, model, "
    "decision) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the log with the settings every user of it should have."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SqliteStore:
    """A `Store` writing to one SQLite file (created, and migrated, when opened)."""

    def __init__(self, path: str | Path, *, interval_s: float = 0.05) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(self.path)
        migrate(self._conn)
        self._interval = interval_s
        self._pending: deque[LogEntry] = deque()
        self._shadows: deque[tuple[Any, ...]] = deque()
        self._waiters: deque[concurrent.futures.Future[None]] = deque()
        self._wake = threading.Event()
        self._closed = self._stopping = False
        self._thread = threading.Thread(target=self._run, name="taskroute-store", daemon=True)
        self._thread.start()

    # -- the Store Protocol ---------------------------------------------------------------------

    def add(self, entry: LogEntry) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append(entry)

    def add_shadow(self, request_id: str, decision: Decision) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._shadows.append((request_id, time.time(), decision.policy, decision.task,
                              decision.tier, decision.model,
                              msgspec.json.encode(decision.to_dict()).decode()))

    async def flush(self) -> None:
        if self._closed:
            return
        await asyncio.wrap_future(self._ask_flush())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        await asyncio.wrap_future(self._ask_flush())
        await asyncio.to_thread(self._thread.join)

    def close(self) -> None:
        """The synchronous `aclose`, for code with no event loop."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._ask_flush().result()
        self._thread.join()

    def _ask_flush(self) -> concurrent.futures.Future[None]:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._waiters.append(done)
        self._wake.set()
        return done

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            waiters = []
            while self._waiters:  # taken before the entries: all they wait for is pending
                waiters.append(self._waiters.popleft())
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            shadows = []
            while self._shadows:
                shadows.append(self._shadows.popleft())
            if batch or shadows:
                self._write(batch, shadows)
            for done in waiters:
                done.set_result(None)
            if self._stopping and not self._pending and not self._waiters:
                break
        self._conn.close()

    def _write(self, batch: list[LogEntry], shadows: list[tuple[Any, ...]]) -> None:
        try:
            self._conn.execute("BEGIN")
            self._conn.executemany(_INSERT_SHADOW, shadows)
            for entry in batch:
                request_id = entry.record.request_id
                self._conn.execute(_INSERT_REQUEST, request_row(entry))
                self._conn.execute("DELETE FROM attempts WHERE request_id = ?", (request_id,))
                self._conn.executemany(_INSERT_ATTEMPT, attempt_rows(entry))
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            log.exception("could not write %d log entries", len(batch))
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")


def request_row(entry: LogEntry) -> tuple[Any, ...]:
    record = entry.record
    decision = record.decision
    return (
        record.request_id, record.started_at, entry.api, entry.http_status, record.status,
        record.error, decision.policy, decision.task, decision.task_source,
        decision.task_confidence, decision.tier, decision.model, record.answered_by,
        int(decision.routed), int(record.escalated), record.race_winner,
        decision.estimated_cost_usd, record.total_cost_usd,
        sum(a.input_tokens for a in record.attempts),
        sum(a.output_tokens for a in record.attempts),
        record.latency_s, record.first_token_s, entry.user, entry.session_id, entry.api_key_id,
        msgspec.json.encode(decision.to_dict()).decode(), entry.prompt, entry.answer,
        entry.variant,
    )


def attempt_rows(entry: LogEntry) -> list[tuple[Any, ...]]:
    request_id = entry.record.request_id
    return [
        (
            request_id, seq, a.model, a.deployment, a.role, a.status, a.started_at,
            a.latency_s, a.first_token_s, a.input_tokens, a.output_tokens, a.cost_usd,
            msgspec.json.encode([
                {"gate": v.gate, "passed": v.passed, "reason": v.reason,
                 "confidence": v.confidence} for v in a.verdicts
            ]).decode(),
            a.error,
        )
        for seq, a in enumerate(entry.record.attempts)
    ]


def build(url: str) -> SqliteStore:
    """The `sqlite` store (registered in `taskroute.plugins.STORES`): `sqlite:PATH`, the path
    relative to the working folder unless absolute (`sqlite:///var/log/taskroute.db`)."""
    path = url.partition(":")[2]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise ValueError("the sqlite store needs a file: sqlite:PATH")
    return SqliteStore(path)
