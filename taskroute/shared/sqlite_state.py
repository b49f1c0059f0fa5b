"""`SharedState` in one SQLite file, for the workers of one machine (`taskroute serve --workers
N` without Redis): each worker opens the same file, and each step that must be atomic across
them (the rate-limit token, a budget reservation, a settlement) is one `BEGIN IMMEDIATE`
transaction. News (a breaker opened, a reload asked) is a row in `events`, which every worker
polls every `POLL_S`. Counters need no durability past a crash of the machine, so the file runs
with `synchronous=OFF` in WAL mode: a transaction costs tens of microseconds, not an fsync.

Each worker does its SQLite work on one thread of its own, off the event loop. Same rules as
the Redis state (`redis_state.py`): GCRA per key, the day's first request admitted whatever
its estimate, a settlement applied once by its hold's id. Each hold is a row in `holds` with an
expiry; every worker sweeps now and then, freeing the holds nobody settled in time (their worker
was killed mid-request), so a crash does not keep a budget's money held until midnight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from taskroute.quality.budgets import Hold, Scope, Spend, day_start, refusal, scopes_of
from taskroute.records import SharedSnapshot
from taskroute.session import SessionHistory
from taskroute.shared.base import HOLD_TTL_S, Lookup, OnReload, Prefetched, sweep_interval
from taskroute.shared.memory import MemoryState
from taskroute.store.wal import wal_mode

log = logging.getLogger("taskroute.shared")
POLL_S = 0.25
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS rate (key TEXT PRIMARY KEY, tat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS spend (day INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    settled REAL NOT NULL DEFAULT 0, held REAL NOT NULL DEFAULT 0, PRIMARY KEY (day, kind, id));
CREATE TABLE IF NOT EXISTS settled (hold TEXT PRIMARY KEY, day INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holds (id TEXT PRIMARY KEY, day INTEGER NOT NULL,
    amount REAL NOT NULL, scopes TEXT NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS holds_by_expiry ON holds (expires);
CREATE TABLE IF NOT EXISTS escalations (session TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS escalations_by_session ON escalations (session, at);
CREATE TABLE IF NOT EXISTS seeded (day INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL, origin TEXT NOT NULL);
"""


class SqliteState:
    def __init__(self, path: str | Path, *, history: SessionHistory | None = None,
                 spend: Spend | None = None, hold_ttl_s: float = HOLD_TTL_S) -> None:
        self.path = Path(path)
        self.hold_ttl_s = hold_ttl_s   # how long a hold may go unsettled before a sweep frees it
        self._sweeper: asyncio.Task[None] | None = None
        self.fallback = MemoryState(history, spend)  # this process's own books, as with Redis
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="taskroute-shared")
        self._db: sqlite3.Connection | None = None
        self._random = random.Random()
        self.origin = f"{self._random.getrandbits(64):016x}"
        self._until: dict[str, float] = {}       # deployment → open until (wall clock)
        self._callbacks: list[OnReload] = []
        self._heard: list[Callable[[str, float], None]] = []
        self._pending: set[Future[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._seen = 0
        self.fallbacks = 0   # never: a local file does not go away (kept for the metrics)
        self.refusals = 0

    # -- the five concerns, all here ---------------------------------------------------------------

    @property
    def rate(self) -> SqliteState:
        return self

    @property
    def spend(self) -> SqliteState:
        return self

    @property
    def sessions(self) -> SqliteState:
        return self

    @property
    def breakers(self) -> SqliteState:
        return self

    @property
    def broadcast(self) -> SqliteState:
        return self

    @property
    def description(self) -> str:
        return f"sqlite ({self.path}, this machine's workers)"

    # -- on the thread -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0,
                                       check_same_thread=False)
            wal_mode(self._db)  # workers open a new file together at start
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(SCHEMA)
        return self._db

    def _atomic(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self._thread.submit(self._atomic, work))

    def _later(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        future = self._thread.submit(self._atomic, work)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("shared state: a write to %s failed: %s", self.path, future.exception())

    # -- before deciding ---------------------------------------------------------------------------

    async def prefetch(self, lookup: Lookup) -> Prefetched:
        if not (lookup.rate_key and lookup.rpm) and not lookup.session and not lookup.scopes:
            return Prefetched(SharedSnapshot())
        now = time.time()

        def work(db: sqlite3.Connection) -> Prefetched:
            wait = (_gcra(db, lookup.rate_key, lookup.rpm, now)
                    if lookup.rate_key and lookup.rpm else None)
            escalations = 0
            if lookup.session:
                escalations = db.execute(
                    "SELECT count(*) FROM escalations WHERE session = ? AND at >= ?",
                    (lookup.session, now - lookup.window_s)).fetchone()[0]
            day = int(day_start(now))
            spent = {scope: _spent(db, day, scope) for scope in lookup.scopes}
            return Prefetched(SharedSnapshot(escalations, spent), wait)

        return await self._run(work)

    async def take(self, key: str, rpm: int, *, fail_closed: bool = False) -> float | None:
        now = time.time()
        return await self._run(lambda db: _gcra(db, key, rpm, now))

    # -- budgets -----------------------------------------------------------------------------------

    async def reserve(self, amount: float, *, user: str | None, key: str | None,
                      limits: Mapping[Scope, float], fail_closed: bool = False) -> Hold:
        now = time.time()
        day = int(day_start(now))
        scopes = tuple(scopes_of(user, key))
        hold_id = f"{self._random.getrandbits(96):024x}"

        def work(db: sqlite3.Connection) -> BaseException | None:
            for scope in scopes:
                limit = limits.get(scope)
                if limit is None:
                    continue
                row = db.execute("SELECT settled, held FROM spend WHERE day = ? AND kind = ? "
                                 "AND id = ?", (day, *scope)).fetchone()
                settled, held = row if row else (0.0, 0.0)
                if settled >= limit or (settled + held > 0 and settled + held + amount > limit):
                    return refusal(scope, limit, settled, held, now)
            db.executemany(
                "INSERT INTO spend (day, kind, id, held) VALUES (?, ?, ?, ?) ON CONFLICT "
                "(day, kind, id) DO UPDATE SET held = held + excluded.held",
                [(day, *scope, amount) for scope in scopes])
            db.execute("INSERT INTO holds (id, day, amount, scopes, expires) "
                       "VALUES (?, ?, ?, ?, ?)", (hold_id, day, amount, json.dumps(scopes),
                                                  now + self.hold_ttl_s))
            return None

        refused = await self._run(work)
        if refused is not None:
            raise refused
        return Hold(amount, scopes, float(day), where="shared", id=hold_id)

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        self.fallback.local_spend.settle(None, cost, user=user, key=key, now=now)
        now = time.time() if now is None else now
        day = int(day_start(now))
        paid = scopes_of(user, key)
        hold_id = hold.id if hold is not None else f"{self._random.getrandbits(96):024x}"

        def work(db: sqlite3.Connection) -> None:
            if db.execute("INSERT OR IGNORE INTO settled (hold, day) VALUES (?, ?)",
                          (hold_id, day)).rowcount == 0:
                return  # applied already
            # released only if still held: a sweep may have freed it (its worker presumed dead)
            if hold is not None and db.execute("DELETE FROM holds WHERE id = ?",
                                               (hold.id,)).rowcount:
                _release(db, int(hold.day), hold.amount, hold.scopes)
            db.executemany(
                "INSERT INTO spend (day, kind, id, settled) VALUES (?, ?, ?, ?) ON CONFLICT "
                "(day, kind, id) DO UPDATE SET settled = settled + excluded.settled",
                [(day, *scope, cost) for scope in paid])

        self._later(work)

    async def sweep(self, now: float | None = None) -> int:
        """Free the holds nobody settled before their expiry, at most 500; how many."""
        now = time.time() if now is None else now

        def work(db: sqlite3.Connection) -> int:
            expired = db.execute("SELECT id, day, amount, scopes FROM holds WHERE expires <= ? "
                                 "ORDER BY expires LIMIT 500", (now,)).fetchall()
            for hold_id, day, amount, scopes in expired:
                db.execute("DELETE FROM holds WHERE id = ?", (hold_id,))
                _release(db, day, amount, [tuple(s) for s in json.loads(scopes)])
            return len(expired)

        return await self._run(work)

    async def _sweep_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(sweep_interval(self.hold_ttl_s) * (0.5 + self._random.random()))
            try:
                released = await self.sweep()
            except sqlite3.Error as exc:
                log.error("shared state: sweeping budget holds in %s failed: %s", self.path, exc)
                continue
            if released:
                log.warning("shared state: released %d budget holds that were never settled "
                            "(a worker stopped mid-request)", released)

    async def seed(self, spent: Mapping[Scope, float], now: float | None = None) -> bool:
        """Start today's shared spend from the log's, once a day for the file (the first
        worker up does it; the others find it done)."""
        day = int(day_start(time.time() if now is None else now))

        def work(db: sqlite3.Connection) -> bool:
            if db.execute("INSERT OR IGNORE INTO seeded (day) VALUES (?)", (day,)).rowcount == 0:
                return False
            db.executemany(
                "INSERT INTO spend (day, kind, id, settled) VALUES (?, ?, ?, ?) ON CONFLICT "
                "(day, kind, id) DO UPDATE SET settled = settled + excluded.settled",
                [(day, *scope, amount) for scope, amount in spent.items()])
            return True

        return await self._run(work)

    # -- sessions ----------------------------------------------------------------------------------

    def record_escalation(self, session_id: str) -> None:
        self.fallback.history.record_escalation(session_id)
        now = time.time()
        self._later(lambda db: db.execute(
            "INSERT INTO escalations (session, at) VALUES (?, ?)", (session_id, now)))

    # -- breakers and reloads: rows in `events` ----------------------------------------------------

    def opened(self, deployment: str, cooldown_s: float) -> None:
        self._until[deployment] = time.time() + cooldown_s
        self._later(lambda db: self._event(db, "breaker", f"{deployment} {cooldown_s}"))

    def open_for(self, deployment: str) -> float:
        until = self._until.get(deployment)
        return 0.0 if until is None else max(0.0, until - time.time())

    def on_heard(self, callback: Callable[[str, float], None]) -> None:
        self._heard.append(callback)

    def on_reload(self, callback: OnReload) -> None:
        self._callbacks.append(callback)

    async def publish_reload(self) -> None:
        await self._run(lambda db: self._event(db, "reload", ""))

    def _event(self, db: sqlite3.Connection, kind: str, data: str) -> None:
        now = time.time()
        db.execute("INSERT INTO events (at, kind, data, origin) VALUES (?, ?, ?, ?)",
                   (now, kind, data, self.origin))
        db.execute("DELETE FROM events WHERE at < ?", (now - 3600,))

    async def _poll(self) -> None:
        while True:
            try:
                rows = await self._run(lambda db: db.execute(
                    "SELECT id, at, kind, data, origin FROM events WHERE id > ? ORDER BY id",
                    (self._seen,)).fetchall())
                for event_id, at, kind, data, origin in rows:
                    self._seen = event_id
                    await self._handle(at, kind, data, origin)
            except sqlite3.Error as exc:
                log.error("shared state: reading events from %s failed: %s", self.path, exc)
            await asyncio.sleep(POLL_S)

    async def _handle(self, at: float, kind: str, data: str, origin: str) -> None:
        if kind == "breaker":
            deployment, _, seconds = data.rpartition(" ")
            with contextlib.suppress(ValueError):
                until = at + float(seconds)
                self._until[deployment] = max(self._until.get(deployment, 0.0), until)
                if origin != self.origin and until > time.time():
                    for heard in self._heard:
                        heard(deployment, until - time.time())
        elif kind == "reload" and origin != self.origin:
            for callback in self._callbacks:
                try:
                    await callback()
                except Exception:
                    log.exception("shared state: a broadcast reload failed")

    # -- life --------------------------------------------------------------------------------------

    async def start(self) -> None:
        now = time.time()

        def catch_up(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = db.execute("SELECT id, at, kind, data, origin FROM events "
                              "WHERE kind = 'breaker' AND at > ?", (now - 3600,)).fetchall()
            self._seen = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            db.execute("DELETE FROM rate WHERE tat < ?", (now,))
            db.execute("DELETE FROM escalations WHERE at < ?", (now - 86400,))
            db.execute("DELETE FROM spend WHERE day < ?", (int(day_start(now)) - 86400,))
            db.execute("DELETE FROM settled WHERE day < ?", (int(day_start(now)) - 86400,))
            db.execute("DELETE FROM holds WHERE day < ?", (int(day_start(now)) - 86400,))
            return rows

        for _, at, kind, data, origin in await self._run(catch_up):
            await self._handle(at, kind, data, origin)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_now_and_then())

    async def drain(self) -> None:
        if self._pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._pending)],
                               timeout=5.0)

    async def aclose(self) -> None:
        poller, self._poller = self._poller, None
        sweeper, self._sweeper = self._sweeper, None
        for task in (poller, sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.drain()

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.wrap_future(self._thread.submit(close))
        self._thread.shutdown(wait=True)


def _gcra(db: sqlite3.Connection, key: str | None, rpm: int | None,
          now: float) -> float | None:
    """As the Redis script: None when allowed, else whole seconds to wait."""
    if not key or not rpm:
        return None
    period = 60.0 / rpm
    row = db.execute("SELECT tat FROM rate WHERE key = ?", (key,)).fetchone()
    tat = max(row[0] if row else now, now) + period
    allow_at = tat - rpm * period
    if now < allow_at:
        return float(max(1, math.ceil(allow_at - now)))
    db.execute("INSERT INTO rate (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
               "tat = excluded.tat", (key, tat))
    return None


def _release(db: sqlite3.Connection, day: int, amount: float,
             scopes: Sequence[Sequence[str]]) -> None:
    db.executemany("UPDATE spend SET held = max(0, held - ?) WHERE day = ? AND kind = ? AND "
                   "id = ?", [(amount, day, *scope) for scope in scopes])


def _spent(db: sqlite3.Connection, day: int, scope: Scope) -> float:
    row = db.execute("SELECT settled + held FROM spend WHERE day = ? AND kind = ? AND id = ?",
                     (day, *scope)).fetchone()
    return float(row[0]) if row else 0.0
