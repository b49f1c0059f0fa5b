"""Shadow decisions: what a candidate policy would have chosen for each request, logged next to
the request (table `shadow_decisions`) and never served. Written by one background thread, in
batches, so the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path

import msgspec

from taskroute.decision import Decision

log = logging.getLogger(__name__)
_INSERT = ("INSERT OR REPLACE INTO shadow_decisions (request_id, ts, policy, task, tier, model, "
           "decision) VALUES (?, ?, ?, ?, ?, ?, ?)")
Row = tuple[str, float, str, str, str, str, str]


class ShadowLog:
    def __init__(self, path: str | Path) -> None:
        from taskroute.store.migrations import migrate
        from taskroute.store.sqlite import connect

        self._conn = connect(path)
        migrate(self._conn)
        self._queue: queue.SimpleQueue[Row | concurrent.futures.Future[None] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="taskroute-shadow", daemon=True)
        self._thread.start()

    def add(self, request_id: str, decision: Decision) -> None:
        self._queue.put((request_id, time.time(), decision.policy, decision.task, decision.tier,
                         decision.model, msgspec.json.encode(decision.to_dict()).decode()))

    async def flush(self) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(done)
        await asyncio.wrap_future(done)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            rows: list[Row] = []
            waiting: list[concurrent.futures.Future[None]] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, concurrent.futures.Future):
                    waiting.append(item)
                else:
                    rows.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if rows:
                try:
                    self._conn.execute("BEGIN")
                    self._conn.executemany(_INSERT, rows)
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    log.exception("could not write %d shadow decisions", len(rows))
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            for future in waiting:
                future.set_result(None)
            if stop:
                self._conn.close()
                return
