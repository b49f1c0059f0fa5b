"""The embedded request log: SQLite in WAL mode, written in batches by one background thread and
read on another, so the event loop never waits on the disk.

What a request needs before it is acknowledged (`acknowledged()`, already done) is in the
journal of `sqlite_journal` once `add()` returns: its rows, one line appended with one `write()`
to `log.db-ack.*`, the durability point; the writer commits them to SQLite later, and opening the
store replays whatever a killed process journaled but never committed. (Refusals, shadow
decisions and breaker trips, which no answer waits for, are not journaled.)

Writing is a group commit. `add()` queues the entry's rows after journaling them, and
`add_refused()`, `add_shadow()` and `add_trip()` only append to a deque (no lock, no wake-up).
`flush()` (committed to SQLite, for readers such as feedback) registers a waiter on the next
commit and wakes the writer at once; the writer takes every waiter, then every queued entry,
commits them in one transaction and resolves the waiters with one hand-off per event loop, so
concurrent callers share one commit (a waiter that arrives during a commit gets the next one,
started as soon as this one ends). With nobody waiting, the writer wakes every `interval_s` and
commits what has queued up, then deletes the journal file those entries were in. `aclose()`
flushes and stops both threads. Checkpoints (copying the WAL into the database, with two fsyncs)
are not left to SQLite's automatic ones, which would land inside a commit: a passive one runs on
the reader's thread at most once a second while requests are written.

What "written" means: the transaction has committed, so its pages are in the WAL file through
`write()` — in the operating system, which keeps them when this process is killed (SIGKILL, a
crash, the OOM killer). With `synchronous=NORMAL` the WAL is not fsynced at each commit, so an
operating-system crash or power loss may still lose the last commits (never corrupting the
database); that costs an fsync per commit to close and is not what `flush()` promises. A commit
that fails (a full disk, say) is logged as an error and its waiters are released all the same:
the log failing does not stop answers going out (its entries stay journaled, for the next open).

Reading (the `LogReader` Protocol): one worker thread with its own connection runs the SQL in
`sqlite_reads` (the reports, over the rollups of `sqlite_rollup`) and `sqlite_rows` (feedback,
spend, exports); WAL lets it read while the writer commits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec

import taskroute.store.sqlite_prune as sqlite_prune
import taskroute.store.sqlite_reads as sqlite_reads
import taskroute.store.sqlite_rows as sqlite_rows
from taskroute.decision import Decision
from taskroute.exceptions import DataError, UnknownRequest
from taskroute.policy.model import Price
from taskroute.quality.budgets import Scope
from taskroute.quality.feedback import Feedback
from taskroute.quality.metrics import By
from taskroute.quality.timeseries import Step
from taskroute.records import Attempt, RouteRecord, Trip
from taskroute.store.base import LogEntry, RatedAnswer, Refusal, RequestRoute, StoredResponse
from taskroute.store.counts import SERVED_FACT_COLUMNS, served_facts
from taskroute.store.migrations import migrate
from taskroute.store.sqlite_journal import Journal, leftovers
from taskroute.store.trips import KEPT_PER_DEPLOYMENT, TRIP_COLUMNS, trip_row
from taskroute.store.wal import wal_mode

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_COLUMNS = (
    "request_id", "ts", "api", "http_status", "status", "error", "policy", "task",
    "task_source", "task_confidence", "tier", "model", "answered_by", "routed", "escalated",
    "race_winner", "estimated_cost_usd", "cost_usd", "input_tokens", "output_tokens",
    "latency_s", "first_token_s", "user", "session_id", "api_key_id", "decision", "prompt",
    "answer", "variant", "race_confidence", "confidence_source", "cached_input_tokens",
    "cache_write_tokens", "reasoning_tokens", "seam_chars", "rescued_by", "steps",
    "n_attempts", "n_rejected", "n_errors",
)  # only ever appended to, nullable: an older journal's shorter rows are padded with NULL
_INSERT_REQUEST = (
    f"INSERT OR REPLACE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
)
ATTEMPT_COLUMNS = (
    "request_id", "seq", "model", "deployment", "role", "status", "started_at", "latency_s",
    "first_token_s", "input_tokens", "output_tokens", "cost_usd", "verdicts", "error",
    "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "step",
)  # only ever appended to, nullable: as REQUEST_COLUMNS
_INSERT_ATTEMPT = (
    f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"
)
SHADOW_COLUMNS = ("request_id", "ts", "policy", "task", "tier", "model", "decision",
                  *SERVED_FACT_COLUMNS)  # the served facts NULL when not given (`add_shadow`)
_INSERT_SHADOW = (
    f"INSERT OR REPLACE INTO shadow_decisions ({', '.join(SHADOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SHADOW_COLUMNS))})"
)
REFUSED_COLUMNS = ("request_id", "ts", "api", "path", "http_status", "type", "reason", "model",
                   "task", "user", "api_key_id", "prompt")
_INSERT_REFUSED = (
    f"INSERT OR REPLACE INTO refused ({', '.join(REFUSED_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REFUSED_COLUMNS))})"
)
_INSERT_RESPONSE = (
    "INSERT OR REPLACE INTO stored_responses (response_id, request_id, ts, api_key_id, "
    "conversation) VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_TRIP = (  # a closing time once written stays (`store.trips`)
    f"INSERT INTO breaker_trips ({', '.join(TRIP_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(TRIP_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    "closed_at = COALESCE(excluded.closed_at, breaker_trips.closed_at)"
)
_TRIM_TRIPS = (  # the deployment's rows older than its newest KEPT_PER_DEPLOYMENT
    "DELETE FROM breaker_trips WHERE deployment = ? AND opened_at < (SELECT opened_at "
    "FROM breaker_trips WHERE deployment = ? ORDER BY opened_at DESC LIMIT 1 OFFSET ?)"
)
# request id, when it was decided, the decision, the served request's record (when known)
Shadow = tuple[str, float, Decision, RouteRecord | None]
EntryRows = tuple[Sequence[Any], Sequence[Sequence[Any]]]  # a request's row, its attempts'
Pending = EntryRows | Refusal | StoredResponse | Trip
CHECKPOINT_EVERY_S = 1.0  # while requests are written: bounds the WAL to ~1 s of them


@dataclass(slots=True)
class _Commit:
    """The waiters of one commit: futures grouped by their event loop (one hand-off each), and
    an event for waiters without a loop (`close`)."""

    futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = field(
        default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def resolve(self) -> None:  # on the writer thread
        for loop, futures in self.futures.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there now
                loop.call_soon_threadsafe(_release, futures)
        self.done.set()


def _release(futures: list[asyncio.Future[None]]) -> None:  # on the waiters' loop
    for future in futures:
        if not future.done():  # a waiter cancelled (its caller hung up) is left be
            future.set_result(None)


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the log with the settings every user of it should have."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    wal_mode(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SqliteStore:
    """A `Store`, a `LogReader`, a `ResponseStore` and a `TripLog` over one SQLite file
    (created, and migrated, when opened)."""

    def __init__(self, path: str | Path, *, interval_s: float = 0.05) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = connect(self.path)
        except sqlite3.DatabaseError as exc:  # not SQLite at all, or unreadable: one clear line
            raise DataError(f"cannot open it as the request log ({exc})", file=str(path)) from None
        migrate(self._conn)
        self._replay()  # before the writer starts: what a killed process journaled, committed
        self._journal = Journal(self.path)
        # Checkpoints (the WAL copied into the database, both fsynced) run on the reader's
        # thread, never inside a commit a request waits on (`_maybe_checkpoint`).
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointing = False
        self._last_checkpoint = time.monotonic()
        self._interval = interval_s
        # refusals, stored responses and trips ride with the entries
        self._pending: deque[Pending] = deque()
        self._shadows: deque[Shadow] = deque()
        self._next = _Commit()             # the commit a waiter arriving now will get
        self._next_lock = threading.Lock()
        self._written_all = False          # set when the writer stops, under `_next_lock`
        self._wake = threading.Event()
        self._observe: Callable[[float], None] | None = None   # each commit's seconds
        self._closed = self._stopping = False
        self._thread = threading.Thread(target=self._run, name="taskroute-store", daemon=True)
        self._thread.start()
        # The reader's thread starts with the first read; its connection is opened on it.
        self._reads = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="taskroute-store-reads")
        self._read_conn: sqlite3.Connection | None = None
        self._has_read = False

    # -- the Store Protocol ---------------------------------------------------------------------

    def add(self, entry: LogEntry) -> None:
        """Journal the entry's rows (one `write()`, on the loop: the durability point) and queue
        them for the writer; once this returns the entry survives the process being killed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        rows = (request_row(entry), attempt_rows(entry))
        self._journal.append(rows, partial(self._pending.append, rows))

    def add_refused(self, refusal: Refusal) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append(refusal)

    def add_response(self, response: StoredResponse) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append(response)

    async def stored_response(self, response_id: str) -> StoredResponse | None:
        await self.flush()  # one queued a moment ago is committed first
        return await self._read(partial(sqlite_rows.stored_response, response_id))

    def add_trip(self, trip: Trip) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append(replace(trip))  # as it is now: the breaker's may close later

    async def recent_trips(self, limit: int) -> list[Trip]:
        await self.flush()  # one queued a moment ago is committed first
        return await self._read(partial(sqlite_rows.recent_trips, limit=limit))

    def add_shadow(self, request_id: str, decision: Decision,
                   served: RouteRecord | None = None) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._shadows.append((request_id, time.time(), decision, served))

    def queue_depth(self) -> int:
        return len(self._pending) + len(self._shadows)

    def on_commit(self, observe: Callable[[float], None]) -> None:
        self._observe = observe

    def acknowledged(self) -> asyncio.Future[None]:
        """Already done: `add` journaled each entry before it returned."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def flush(self) -> asyncio.Future[None]:
        """Wake the writer now; the future resolves once everything added before this call is
        committed to SQLite (see the module docstring for what survives what). Concurrent
        callers share one commit. Call it, do other work, then await it: the commit runs
        meanwhile."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wait_next(future)
        return future

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        await self.flush()
        await asyncio.to_thread(self._join)

    def close(self) -> None:
        """The synchronous `aclose`, for code with no event loop."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wait_next(None).wait()
        self._join()

    def _wait_next(self, future: asyncio.Future[None] | None) -> threading.Event:
        with self._next_lock:  # the writer swaps `_next` under it, so no waiter is missed
            if self._written_all:  # the writer has stopped: everything added is written
                if future is not None:
                    future.set_result(None)
                return self._next.done
            commit = self._next
            if future is not None:
                commit.futures.setdefault(future.get_loop(), []).append(future)
        self._wake.set()
        return commit.done

    def _join(self) -> None:
        self._thread.join()
        if self._has_read:  # else there is no reader thread to start just to close nothing
            self._reads.submit(self._close_read_conn).result()
        self._reads.shutdown()

    # -- the LogReader Protocol -----------------------------------------------------------------

    async def route_stats(
        self, *, since_s: float | None = 86400.0, by: By = "route",
        tier_order: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        return await self._read(partial(sqlite_reads.route_stats, since_s=since_s, by=by,
                                        tier_order=tier_order, now=now))

    async def timeseries(
        self, *, since_s: float | None, baseline_model: str, baseline_price: Price,
        now: float | None = None, step: Step = "hour",
    ) -> dict[str, Any]:
        return await self._read(partial(sqlite_reads.hourly, since_s=since_s, now=now,
                                        baseline_model=baseline_model,
                                        baseline_price=baseline_price, step=step))

    async def ab_report(
        self, *, since_s: float | None, tier_order: Sequence[str] = (),
        variants: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        return await self._read(partial(sqlite_reads.ab_report, since_s=since_s, now=now,
                                        tier_order=tier_order, variants=variants))

    async def shadow_report(
        self, *, since_s: float | None, prices: Mapping[str, Price],
        now: float | None = None,
    ) -> dict[str, Any]:
        await self.flush()  # the shadow decisions queued a moment ago count too
        return await self._read(partial(sqlite_reads.shadow_report, since_s=since_s,
                                        prices=prices, now=now))

    async def add_feedback(self, feedback: Feedback, *, key_id: str | None = None,
                           owner: str | None = None) -> None:
        write = partial(sqlite_rows.record_feedback, feedback=feedback, key_id=key_id,
                        owner=owner)
        try:
            await self._read(write)
        except UnknownRequest:  # it may still be queued for the writer: flush, then look again
            await self.flush()
            await self._read(write)

    async def spend_today(self, *, now: float | None = None) -> dict[Scope, float]:
        return await self._read(partial(sqlite_rows.spend_since, now=now))

    async def catch_up(self) -> int:
        return await self._read(sqlite_reads.try_catch_up)

    async def rated_answers(self) -> list[RatedAnswer]:
        return await self._read(sqlite_rows.rated_answers)

    async def request_routes(self, request_ids: Sequence[str]) -> list[RequestRoute]:
        return await self._read(partial(sqlite_rows.request_routes, request_ids=request_ids))

    async def prune(self, before: float, batch: int) -> int:
        return await self._read(partial(sqlite_prune.prune, before=before, batch=batch))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._has_read = True
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, self._on_reader, fn)

    def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:  # the reader thread only
        if self._read_conn is None:
            self._read_conn = connect(self.path)
        return fn(self._read_conn)

    def _close_read_conn(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._next_lock:  # taken before the entries: all they wait for is pending
                commit, self._next = self._next, _Commit()
            batch, sealed = self._journal.seal(self._take_pending)
            shadows = []
            while self._shadows:
                shadows.append(self._shadows.popleft())
            if batch or shadows:
                began = time.perf_counter()
                written = self._write(batch, shadows)
                if self._observe is not None:
                    self._observe(time.perf_counter() - began)
                if sealed is not None:
                    (self._journal.committed if written else self._journal.keep)(sealed)
                self._maybe_checkpoint()
            commit.resolve()  # last before sleeping: the waiters' loop need not wait for the GIL
            if self._stopping and self._stop_if_idle():
                break
        self._journal.close()
        self._conn.close()

    def _take_pending(self) -> list[Pending]:
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        return batch

    def _replay(self) -> None:
        """Commit the rows of journals left by a process that died before its writer did."""
        with contextlib.suppress(sqlite3.Error), leftovers(self.path) as journaled:
            if not journaled:
                return
            self._conn.execute("BEGIN")
            try:
                for rows in journaled:
                    self._insert(rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error:  # the journal is kept (`leftovers`) for a later open
                log.exception("could not replay %d journaled requests into %s",
                              len(journaled), self.path)
                self._conn.execute("ROLLBACK")
                raise
            log.info("replayed %d journaled requests into %s", len(journaled), self.path)

    def _maybe_checkpoint(self) -> None:
        """At most every `CHECKPOINT_EVERY_S`, a passive checkpoint on the reader's thread: it
        runs beside the writer's commits, so none of them waits for its fsyncs."""
        now = time.monotonic()
        if self._checkpointing or now - self._last_checkpoint < CHECKPOINT_EVERY_S:
            return
        self._checkpointing, self._last_checkpoint = True, now
        self._has_read = True  # the reader's connection, opened for it, is closed with it
        self._reads.submit(self._on_reader, _checkpoint).add_done_callback(self._checkpointed)

    def _checkpointed(self, done: concurrent.futures.Future[None]) -> None:
        self._checkpointing = False
        if done.exception() is not None:
            log.warning("could not checkpoint the request log: %s", done.exception())

    def _stop_if_idle(self) -> bool:
        with self._next_lock:
            idle = not (self._pending or self._shadows or self._next.futures)
            if idle:
                self._written_all = True
                self._next.done.set()
            return idle

    def _write(self, batch: list[Pending], shadows: list[Shadow]) -> bool:
        """One transaction; False (logged) if it failed."""
        tripped: set[str] = set()
        try:
            self._conn.execute("BEGIN")
            for item in batch:
                if isinstance(item, Trip):
                    self._conn.execute(_UPSERT_TRIP, trip_row(item))
                    tripped.add(item.deployment)
                elif isinstance(item, Refusal):
                    self._conn.execute(_INSERT_REFUSED, refused_row(item))
                elif isinstance(item, StoredResponse):
                    self._conn.execute(_INSERT_RESPONSE, (
                        item.response_id, item.request_id, time.time(), item.api_key_id,
                        item.conversation.decode()))
                else:
                    self._insert(item)
            self._conn.executemany(_INSERT_SHADOW, [shadow_row(s) for s in shadows])
            self._conn.executemany(_TRIM_TRIPS, [(d, d, KEPT_PER_DEPLOYMENT - 1)
                                                 for d in sorted(tripped)])
            self._conn.execute("COMMIT")
            return True
        except sqlite3.Error:
            log.exception("could not write %d log entries and %d shadow decisions",
                          len(batch), len(shadows))
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            return False

    def _insert(self, rows: EntryRows) -> None:
        request, attempts = rows
        request = padded(request, REQUEST_COLUMNS)
        self._conn.execute(_INSERT_REQUEST, request)
        self._conn.execute("DELETE FROM attempts WHERE request_id = ?", (request[0],))
        self._conn.executemany(_INSERT_ATTEMPT, [padded(a, ATTEMPT_COLUMNS) for a in attempts])


def padded(row: Sequence[Any], columns: Sequence[str]) -> Sequence[Any]:
    """A row journaled or spooled by an older version, its newer (nullable) columns NULL."""
    if len(row) >= len(columns):
        return row
    return (*row, *(None,) * (len(columns) - len(row)))


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def request_row(entry: LogEntry) -> tuple[Any, ...]:
    record = entry.record
    decision = record.decision
    tokens = record.tokens
    return (
        record.request_id, record.started_at, entry.api, entry.http_status, record.status,
        record.error, decision.policy, decision.task, decision.task_source,
        decision.task_confidence, decision.tier, decision.model, record.answered_by,
        int(decision.routed), int(record.escalated), record.race_winner,
        decision.estimated_cost_usd, record.total_cost_usd,
        tokens.input, tokens.output,
        record.latency_s, record.first_token_s, entry.user, entry.session_id, entry.api_key_id,
        msgspec.json.encode(decision.to_dict()).decode(), entry.prompt, entry.answer,
        entry.variant, record.race_confidence, record.confidence_source, tokens.cached_input,
        tokens.cache_write, tokens.reasoning, record.seam_chars, record.rescued_by,
        msgspec.json.encode([s.to_dict() for s in record.steps]).decode()
        if record.steps else None,
        *attempt_counts(record.attempts),
    )


def attempt_counts(attempts: Sequence[Attempt]) -> tuple[int, int, int]:
    """(attempts, rejected by a gate, failed upstream): kept on the request row so a report
    reads the window's edge from one covering index, without visiting the attempts."""
    statuses = [a.status for a in attempts]
    return len(statuses), statuses.count("rejected"), statuses.count("error")


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
            a.error, a.cached_input_tokens, a.cache_write_tokens, a.reasoning_tokens, a.step,
        )
        for seq, a in enumerate(entry.record.attempts)
    ]


def refused_row(r: Refusal) -> tuple[Any, ...]:
    return (r.request_id, r.ts, r.api, r.path, r.http_status, r.type, r.reason, r.model, r.task,
            r.user, r.api_key_id, r.prompt)


def shadow_row(shadow: Shadow) -> tuple[Any, ...]:
    """`SHADOW_COLUMNS`: the served request's facts for the shadow report when its record is
    given, else NULL (the report then joins the request and its attempts)."""
    request_id, ts, d, served = shadow
    facts = (served_facts(served, d.model) if served is not None
             else (None,) * len(SERVED_FACT_COLUMNS))
    return (request_id, ts, d.policy, d.task, d.tier, d.model,
            msgspec.json.encode(d.to_dict()).decode(), *facts)


def build(url: str) -> SqliteStore:
    """The `sqlite` store (registered in `taskroute.plugins.STORES`): `sqlite:PATH`, the path
    relative to the working folder unless absolute (`sqlite:///var/log/taskroute.db`)."""
    path = url.partition(":")[2]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise ValueError("the sqlite store needs a file: sqlite:PATH")
    return SqliteStore(path)
