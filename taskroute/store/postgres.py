"""The request log in PostgreSQL (`--db postgresql://…`), shared by every replica: asyncpg (the
faster driver in bench/pg_driver.py) on a private event loop in one background thread, so it
serves callers on any loop and none of them waits on the network.

Writing is a group commit. `add`, `add_refused`, `add_shadow`, `add_response` and `add_trip`
append to one queue (under a lock, no wake-up); `acknowledged()` and `flush()` register a waiter on
"everything added so far" and wake the writer, which takes the whole queue and commits it in one
transaction (`postgres_write`), then releases every waiter it covers with one hand-off per event
loop.

Acknowledged means durable, and Postgres may be down or slow: a batch whose commit fails or
does not finish within `ack_timeout_s` is appended to the local spool (`postgres_spool`, as
durable as SQLite's journal) and its waiters released, so answers keep going out; the writer
then reconnects every `retry_s` and, once connected, replays the spool a file at a time between
live commits. While it is disconnected each batch goes straight to the spool. The queue is
bounded too: past `memory_max` items an add goes to the spool itself. Every insert is ON
CONFLICT DO NOTHING by request id (a trip's, by its id, keeps a closing time: `store.trips`), so
a commit whose reply was lost and then replayed is not written twice. `flush()` promises the
same as `acknowledged()` (durable), and during an outage readers see spooled rows only once
they are replayed.

Reading (the `LogReader` Protocol) borrows a connection from a small pool on the same loop and
runs the SQL of `postgres_reads` (reports, over the hourly rollups), `postgres_rows` (feedback,
spend, exports, stored responses, trips) and `postgres_prune` (retention). A read while Postgres is
unreachable raises `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg

import taskroute.store.postgres_prune as pg_prune
import taskroute.store.postgres_reads as pg_reads
import taskroute.store.postgres_rows as pg_rows
from taskroute.decision import Decision
from taskroute.exceptions import StoreUnavailable, UnknownRequest
from taskroute.policy.model import Price
from taskroute.quality.budgets import Scope
from taskroute.quality.feedback import Feedback
from taskroute.quality.metrics import By
from taskroute.quality.timeseries import Step
from taskroute.records import RouteRecord, Trip
from taskroute.store.base import LogEntry, RatedAnswer, Refusal, RequestRoute, StoredResponse
from taskroute.store.postgres_migrations import migrate
from taskroute.store.postgres_spool import Item, Spool, SpoolFile
from taskroute.store.postgres_write import write
from taskroute.store.sqlite import attempt_rows, refused_row, request_row, shadow_row
from taskroute.store.trips import trip_row
from taskroute.store.urls import redact

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a lost or sick server raises; anything else from a batch is its data's fault.
DOWN = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)
Waiter = tuple[int, asyncio.Future[None]]


class PostgresStore:
    """A `Store`, a `LogReader`, a `ResponseStore` and a `TripLog` over one PostgreSQL database
    (migrated when opened)."""

    def __init__(
        self, url: str, *, spool_dir: str | Path, interval_s: float = 0.05,
        ack_timeout_s: float = 1.0, retry_s: float = 0.5, memory_max: int = 10_000,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self._interval, self._ack_timeout, self._retry = interval_s, ack_timeout_s, retry_s
        self._memory_max, self._connect_timeout = memory_max, connect_timeout_s
        self.spool = Spool(Path(spool_dir))
        self._lock = threading.Lock()
        self._pending: deque[Item] = deque()
        self._added = self._durable = 0       # items counted in order; ≤ _durable are safe
        self._waiters: list[Waiter] = []
        self._closed = self._stopping = False
        self._woken = False
        self._observe: Callable[[float], None] | None = None   # each batch's seconds
        self._conn: asyncpg.Connection | None = None   # the writer's; None while down
        self._down_since: float | None = None
        self._next_try = 0.0
        self._reconnecting: asyncio.Task[None] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="taskroute-pg",
                                        daemon=True)
        self._thread.start()
        try:
            self._run(self._open()).result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self.spool.close()
            raise

    async def _open(self) -> None:
        try:
            self._conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
            await migrate(self._conn)
            self._pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=4, timeout=self._connect_timeout)
        except BaseException as exc:
            if self._conn is not None:
                self._conn.terminate()
            if not isinstance(exc, DOWN):
                raise
            raise StoreUnavailable(f"cannot reach the PostgreSQL log at {redact(self.url)} "
                                   f"({type(exc).__name__}: {exc})") from None
        self._wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())

    def _run(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """`coro` on the store's loop, as a concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[return-value]

    # -- the Store Protocol ---------------------------------------------------------------------

    def add(self, entry: LogEntry) -> None:
        self._queue(("e", list(request_row(entry)), [list(a) for a in attempt_rows(entry)]))

    def add_refused(self, refusal: Refusal) -> None:
        self._queue(("r", list(refused_row(refusal)), []))

    def add_shadow(self, request_id: str, decision: Decision,
                   served: RouteRecord | None = None) -> None:
        self._queue(("s", list(shadow_row((request_id, time.time(), decision, served))), []))

    def add_response(self, response: StoredResponse) -> None:
        self._queue(("p", [response.response_id, response.request_id, time.time(),
                           response.api_key_id, response.conversation.decode()], []))

    async def stored_response(self, response_id: str) -> StoredResponse | None:
        await self.flush()  # one queued a moment ago is committed first
        return await self._read(partial(pg_rows.stored_response, response_id=response_id))

    def add_trip(self, trip: Trip) -> None:
        self._queue(("t", list(trip_row(trip)), []))

    async def recent_trips(self, limit: int) -> list[Trip]:
        await self.flush()  # one queued a moment ago is committed (or spooled) first
        return await self._read(partial(pg_rows.recent_trips, limit=limit))

    def _queue(self, item: Item) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        with self._lock:
            self._added += 1
            if len(self._pending) < self._memory_max:
                self._pending.append(item)
                return
            try:  # the memory bound: past it, the item waits on disk
                self.spool.append([item])
            except OSError:
                log.exception("cannot spool a request-log item; keeping it in memory")
                self._pending.append(item)

    def queue_depth(self) -> int:
        return len(self._pending)

    def on_commit(self, observe: Callable[[float], None]) -> None:
        self._observe = observe

    def acknowledged(self) -> asyncio.Future[None]:
        """Done once everything added so far is committed to Postgres or in the local spool."""
        return self.flush()

    def flush(self) -> asyncio.Future[None]:
        """Wake the writer now; done once everything added before the call is durable (see the
        module docstring). Concurrent callers share one commit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._durable >= self._added:
                future.set_result(None)
                return future
            self._waiters.append((self._added, future))
            wake, self._woken = not self._woken, True
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop is gone: aclose has finished
                self._loop.call_soon_threadsafe(self._wake.set)
        return future

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.wrap_future(self._run(self._shutdown()))
        await asyncio.to_thread(self._join)

    def close(self) -> None:
        """The synchronous `aclose`, for code with no event loop."""
        if self._closed:
            return
        self._closed = True
        self._run(self._shutdown()).result()
        self._join()

    async def _shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._writer
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._conn is not None:
            await _quietly(self._conn.close(timeout=2))
        await _quietly(self._pool.close())
        self.spool.close()

    def _join(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # -- the LogReader Protocol -----------------------------------------------------------------

    async def route_stats(
        self, *, since_s: float | None = 86400.0, by: By = "route",
        tier_order: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        await self.catch_up()
        return await self._read(partial(pg_reads.route_stats, since_s=since_s, by=by,
                                        tier_order=tier_order, now=now))

    async def timeseries(
        self, *, since_s: float | None, baseline_model: str, baseline_price: Price,
        now: float | None = None, step: Step = "hour",
    ) -> dict[str, Any]:
        await self.catch_up()
        return await self._read(partial(pg_reads.hourly, since_s=since_s, now=now,
                                        baseline_model=baseline_model,
                                        baseline_price=baseline_price, step=step))

    async def ab_report(
        self, *, since_s: float | None, tier_order: Sequence[str] = (),
        variants: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        await self.catch_up()
        return await self._read(partial(pg_reads.ab_report, since_s=since_s, now=now,
                                        tier_order=tier_order, variants=variants))

    async def shadow_report(
        self, *, since_s: float | None, prices: Mapping[str, Price],
        now: float | None = None,
    ) -> dict[str, Any]:
        return await self._read(partial(pg_reads.shadow_report, since_s=since_s,
                                        prices=prices, now=now))

    async def add_feedback(self, feedback: Feedback, *, key_id: str | None = None,
                           owner: str | None = None) -> None:
        record = partial(pg_rows.record_feedback, feedback=feedback, key_id=key_id,
                         owner=owner)
        try:
            await self._read(record)
        except UnknownRequest:  # it may still be queued for the writer: flush, then look again
            await self.flush()
            await self._read(record)

    async def spend_today(self, *, now: float | None = None) -> dict[Scope, float]:
        return await self._read(partial(pg_rows.spend_since, now=now))

    async def catch_up(self) -> int:
        return await self._read(pg_reads.catch_up)

    async def rated_answers(self) -> list[RatedAnswer]:
        return await self._read(pg_rows.rated_answers)

    async def request_routes(self, request_ids: Sequence[str]) -> list[RequestRoute]:
        return await self._read(partial(pg_rows.request_routes, request_ids=request_ids))

    async def prune(self, before: float, batch: int) -> int:
        return await self._read(partial(pg_prune.prune, before=before, batch=batch))

    async def _read(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        return await asyncio.wrap_future(self._run(self._on_pool(fn)))

    async def _on_pool(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        try:
            async with self._pool.acquire(timeout=self._connect_timeout) as conn:
                return await fn(cast(asyncpg.Connection, conn))  # a proxy of one
        except DOWN as exc:
            raise StoreUnavailable(f"the PostgreSQL log at {redact(self.url)} is unreachable "
                                   f"({type(exc).__name__}: {exc})") from None

    # -- the writer, on the store's loop --------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            with self._lock:
                self._woken = False
                batch = list(self._pending)
                self._pending.clear()
                upto = self._added  # every item ≤ upto is in `batch` or already spooled
            if batch:
                began = time.perf_counter()
                await self._commit_or_spool(batch)
                if self._observe is not None:
                    self._observe(time.perf_counter() - began)
            self._settle(upto)
            if self._conn is None:
                self._maybe_reconnect()
            elif not self._stopping or self._added == self._durable:
                await self._replay_one()
            if self._stopping and self._durable == self._added and not self._pending:
                return

    async def _commit_or_spool(self, batch: list[Item]) -> None:
        if self._conn is not None:
            try:
                await asyncio.wait_for(write(self._conn, batch), self._ack_timeout)
                return
            except DOWN as exc:
                self._lost(exc)
            except asyncpg.PostgresError:  # a row the server refuses: the others still go in
                await self._one_by_one(batch)
                return
        self._spool(batch)

    def _spool(self, batch: list[Item]) -> None:
        try:
            self.spool.append(batch)
        except OSError:  # nowhere left to keep them: said loudly, answers still go out
            log.exception("cannot spool %d request-log items while PostgreSQL is unavailable; "
                          "they are lost", len(batch))

    async def _one_by_one(self, batch: list[Item]) -> None:
        assert self._conn is not None
        for item in batch:
            try:
                await asyncio.wait_for(write(self._conn, [item]), self._ack_timeout)
            except DOWN as exc:
                self._lost(exc)
                self._spool([item])
            except asyncpg.PostgresError as exc:
                log.error("PostgreSQL refused a request-log %s row (%s): %s", item[0],
                          type(exc).__name__, exc)

    def _settle(self, upto: int) -> None:
        """Everything ≤ `upto` is durable: release its waiters, one hand-off per loop."""
        with self._lock:
            self._durable = max(self._durable, upto)
            ready = [f for target, f in self._waiters if target <= self._durable]
            self._waiters = [(t, f) for t, f in self._waiters if t > self._durable]
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for future in ready:
            by_loop.setdefault(future.get_loop(), []).append(future)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there now
                loop.call_soon_threadsafe(_release, futures)

    def _lost(self, exc: BaseException) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("PostgreSQL log at %s unavailable (%s: %s): acknowledged rows go to the "
                      "spool in %s until it is back", redact(self.url), type(exc).__name__, exc,
                      self.spool.folder)
        self._next_try = time.monotonic() + self._retry

    def _maybe_reconnect(self) -> None:
        if self._reconnecting is None and time.monotonic() >= self._next_try:
            self._reconnecting = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            self._conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
        except (*DOWN, asyncpg.PostgresError):
            self._next_try = time.monotonic() + self._retry
        else:
            if self._down_since is not None:
                log.warning("PostgreSQL log at %s is back after %.1f s; replaying the spool",
                            redact(self.url), time.monotonic() - self._down_since)
            self._down_since = None
        finally:
            self._reconnecting = None

    async def _replay_one(self) -> None:
        """Write one spooled file to Postgres (they are small: between two live commits)."""
        if self._conn is None or not self.spool.has_any():
            return
        spooled: SpoolFile | None = self.spool.take()
        if spooled is None:
            return
        try:
            await asyncio.wait_for(write(self._conn, spooled.items), 30.0)
        except DOWN as exc:
            self.spool.put_back(spooled)
            self._lost(exc)
            return
        except asyncpg.PostgresError:
            await self._one_by_one(spooled.items)
        self.spool.replayed(spooled)
        log.info("replayed %d spooled request-log items from %s", len(spooled.items),
                 spooled.path)


def _release(futures: list[asyncio.Future[None]]) -> None:  # on the waiters' loop
    for future in futures:
        if not future.done():  # a waiter cancelled (its caller hung up) is left be
            future.set_result(None)


async def _quietly(done: Awaitable[Any]) -> None:
    with contextlib.suppress(*DOWN, asyncpg.PostgresError):
        await done
