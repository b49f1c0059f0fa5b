"""Hedged requests (opt-in, `calling: {hedge: {after: p95}}`): when a deployment has not
answered by its recent p95, send the same request to the next deployment and take whichever
answers first; the other is cancelled.

`FirstTokenTimes` keeps a rolling window of times per deployment and way of calling (its key
`deployment|kind`), each the moment that call is handed on, which is what the hedge waits for:
a live stream's first token (`stream`), its held opening (`stream held`), a whole answer
(`complete`, and `stream whole` for a stream read whole first). It says nothing until it has
`min_samples`, so a cold deployment is never hedged on a guess.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

WINDOW = 200


class FirstTokenTimes:
    def __init__(self, *, quantile: float = 0.95, min_samples: int = 20) -> None:
        self.quantile = quantile
        self.min_samples = min_samples
        self._times: dict[str, deque[float]] = {}

    def add(self, key: str, seconds: float) -> None:
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque(maxlen=WINDOW)
        times.append(seconds)

    def threshold(self, key: str) -> float | None:
        """The recent `quantile` of first-token times, None before `min_samples`."""
        times = self._times.get(key)
        if times is None or len(times) < self.min_samples:
            return None
        ordered = sorted(times)
        index = min(len(ordered) - 1, max(0, round(self.quantile * len(ordered)) - 1))
        return ordered[index]


async def hedged(
    primary: Callable[[], Awaitable[T]],
    backup: Callable[[], Awaitable[T] | None],
    after_s: float,
    *,
    discard: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """`primary()`; if it has not finished after `after_s`, also `backup()` (which may decline
    by returning None) and take the first success. The other is cancelled and awaited, so it
    has recorded itself before this returns. When both fail, the primary's error is raised."""
    first: asyncio.Future[T] = asyncio.ensure_future(primary())
    try:
        done, _ = await asyncio.wait({first}, timeout=after_s)
        if done:
            return first.result()
        second_call = backup()
        if second_call is None:
            return await first
        second: asyncio.Future[T] = asyncio.ensure_future(second_call)
        return await first_success([first, second], discard=discard)
    finally:
        await cancel_and_wait([first])


async def first_success(
    futures: list[asyncio.Future[T]],
    *, discard: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """The first of `futures` to succeed; the rest are cancelled (or discarded, when they
    succeeded at the same moment). When all fail, the first one's error is raised."""
    pending = set(futures)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winners = [
                f for f in futures
                if f in done and not f.cancelled() and f.exception() is None
            ]
            if winners:
                for extra in winners[1:]:
                    if discard is not None:
                        await discard(extra.result())
                return winners[0].result()
        return futures[0].result()  # every one failed: raises the primary's error
    finally:
        await cancel_and_wait(list(pending))


async def cancel_and_wait(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel what is still running and wait for it to finish unwinding."""
    running = [f for f in futures if not f.done()]
    for future in running:
        future.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
