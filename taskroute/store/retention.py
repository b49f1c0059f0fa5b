"""Keeping the log in bounds: the policy's `log keep: 30d` deletes older rows in the background,
one bounded batch at a time (`LogReader.prune`), pausing between batches so writes go on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("taskroute.store")

BATCH = 500          # rows per transaction: a few milliseconds of SQLite's write lock
PAUSE_S = 0.05       # between batches, so the writer's commits interleave
EVERY_S = 3600.0     # how often to look again once nothing is left to prune


class Prunable(Protocol):
    async def prune(self, before: float, batch: int) -> int: ...


async def prune_once(
    store: Prunable, keep_s: float, *, batch: int = BATCH, pause_s: float = PAUSE_S,
    now: float | None = None,
) -> int:
    """Delete everything older than `keep_s` before `now`, batch by batch; how many rows."""
    before = (time.time() if now is None else now) - keep_s
    total = 0
    while True:
        deleted = await store.prune(before, batch)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(pause_s)


async def keep_pruning(
    store: Prunable, keep_s: Callable[[], float | None], *, every_s: float = EVERY_S,
    batch: int = BATCH, pause_s: float = PAUSE_S,
) -> None:
    """Prune now and every `every_s` until cancelled. `keep_s` is asked each round (a policy
    reload may change it; None: keep everything). A failed round is logged and retried."""
    while True:
        horizon = keep_s()
        if horizon is not None:
            try:
                deleted = await prune_once(store, horizon, batch=batch, pause_s=pause_s)
            except Exception:  # a busy or read-only log: try again next round
                log.exception("pruning the request log failed")
            else:
                if deleted:
                    log.info("pruned %d log rows older than %gs", deleted, horizon)
        await asyncio.sleep(every_s)
