"""The embedded request log: SQLite in WAL mode, written in batches by one background thread.

`add()` only puts the entry on a queue, so the event loop never waits on the disk; the writer
thread commits whatever has queued up (up to `batch_size` entries) in one transaction. `flush()`
returns once everything added before it is committed; `aclose()` flushes and stops the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec

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


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: concurrent.futures.Future[None] = concurrent.futures.Future()


class _Stop(_Flush):
    pass


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

    def __init__(self, path: str | Path, *, batch_size: int = 512) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(self.path)
        migrate(self._conn)
        self._batch_size = batch_size
        self._queue: queue.SimpleQueue[LogEntry | _Flush] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="taskroute-store", daemon=True)
        self._thread.start()

    # -- the Store Protocol ---------------------------------------------------------------------

    def add(self, entry: LogEntry) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._queue.put(entry)

    async def flush(self) -> None:
        if self._closed:
            return
        marker = _Flush()
        self._queue.put(marker)
        await asyncio.wrap_future(marker.done)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        marker = _Stop()
        self._queue.put(marker)
        await asyncio.wrap_future(marker.done)
        await asyncio.to_thread(self._thread.join)

    def close(self) -> None:
        """The synchronous `aclose`, for code with no event loop."""
        if self._closed:
            return
        self._closed = True
        marker = _Stop()
        self._queue.put(marker)
        marker.done.result()
        self._thread.join()

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[LogEntry] = []
            markers: list[_Flush] = []
            item = self._queue.get()
            while True:
                if isinstance(item, _Flush):
                    markers.append(item)
                    stop = stop or isinstance(item, _Stop)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for marker in markers:
                marker.done.set_result(None)
        self._conn.close()

    def _write(self, batch: list[LogEntry]) -> None:
        try:
            self._conn.execute("BEGIN")
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
