"""An inter-token timeout for a live stream: a stream that sends nothing for `seconds` after
its answer has begun has stalled, which is a fault like a dropped connection.

One timer per stream, re-armed only when it fires (a timeout per chunk would cost a timer's
creation and cancellation on every token): when it fires while the stream's reader waits and
nothing has arrived for `seconds`, the wait is cancelled and surfaces as `StreamStalled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from taskroute.exceptions import StreamStalled
from taskroute.response import StreamChunk


class StallGuard:
    """`rest` (a provider's live stream), raising `StreamStalled` when it stalls."""

    __slots__ = ("_deployment", "_handle", "_last", "_loop", "_rest", "_seconds", "_stalled",
                 "_waiter")

    def __init__(self, rest: AsyncIterator[StreamChunk], seconds: float, deployment: str) -> None:
        self._rest = rest
        self._seconds = seconds
        self._deployment = deployment
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._waiter: asyncio.Task[object] | None = None
        self._stalled = False
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(
            self._last + seconds, self._check)

    def __aiter__(self) -> StallGuard:
        return self

    async def __anext__(self) -> StreamChunk:
        self._waiter = asyncio.current_task()
        if self._handle is None and not self._stalled:
            self._handle = self._loop.call_at(self._last + self._seconds, self._check)
        try:
            chunk = await anext(self._rest)
        except asyncio.CancelledError:
            waiter = self._waiter
            if self._stalled and waiter is not None and waiter.uncancel() == 0:
                raise StreamStalled(
                    f"{self._deployment} sent nothing for {self._seconds:g}s mid-answer",
                    model=self._deployment) from None
            raise
        except BaseException:
            self._stop()
            raise
        finally:
            self._waiter = None
        self._last = self._loop.time()
        return chunk

    def _check(self) -> None:
        self._handle = None
        if self._waiter is None:
            return  # the caller is busy (or gone): the next read re-arms the timer
        due = self._last + self._seconds
        if self._loop.time() >= due:
            self._stalled = True
            self._waiter.cancel()
            return
        self._handle = self._loop.call_at(due, self._check)  # a token came since: look again

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def ready(self) -> bool:
        ready = getattr(self._rest, "ready", None)
        return bool(ready is not None and ready())

    async def aclose(self) -> None:
        self._stop()
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()
