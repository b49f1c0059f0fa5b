"""`RouteStream`: a routed answer, streamed.

`await stream.start()` runs until the first output is ready — escalating, retrying and failing
over freely until then, because nothing has gone out yet. After that the chunks pass through as
the model sends them; a stream that breaks off is raised as an error, never ended as if the
answer were complete. Tasks with `buffer stream: true` (and raced tasks) are read whole and
judged by their gates first, then replayed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from taskroute.calling.assemble import Tally, assemble
from taskroute.calling.context import CallContext, describe_error
from taskroute.calling.once import Opened, close_quietly
from taskroute.decision import Decision
from taskroute.exceptions import MalformedResponse, TaskrouteError
from taskroute.gates.base import Gate
from taskroute.gates.runner import run_gates
from taskroute.records import RouteRecord
from taskroute.response import StreamChunk


@dataclass(slots=True)
class StreamStart:
    replay: list[StreamChunk]     # chunks ready to go out first
    live: Opened | None           # the rest still arriving, when the answer is live
    model: str
    race_winner: str | None = None


class StreamEngine(Protocol):
    """What a stream needs of the call path that made it (the `CallEngine`)."""

    async def start_stream(self, ctx: CallContext) -> StreamStart: ...

    def gates_for(self, decision: Decision) -> tuple[Gate, ...]: ...

    def finish(self, ctx: CallContext, record: RouteRecord, answer: str | None,
               error: BaseException | None) -> None: ...


class RouteStream:
    def __init__(self, engine: StreamEngine, ctx: CallContext, record: RouteRecord) -> None:
        self._engine = engine
        self._ctx = ctx
        self.record = record
        self.decision = ctx.decision
        self.model: str | None = None
        self._t0 = time.perf_counter()
        self._replay: deque[StreamChunk] = deque()
        self._live: Opened | None = None
        self._tally = Tally()        # everything the caller has been given
        self._given: list[StreamChunk] = []
        self._live_tally = Tally()   # the live call's chunks, to cost it
        self._started = False
        self._done = False
        self._live_ready: Callable[[], bool] | None = None

    async def start(self) -> None:
        """Run until the first output is ready; raises when every model failed before it."""
        if self._started:
            return
        self._started = True
        try:
            begun = await self._engine.start_stream(self._ctx)
        except (TaskrouteError, asyncio.CancelledError) as exc:
            self._finish(exc)
            raise
        self._replay.extend(begun.replay)
        self._live = begun.live
        if begun.live is not None:
            for chunk in begun.live.held:
                self._live_tally.add(chunk)
            self._live_ready = getattr(begun.live.rest, "ready", None)
        self.model = self.record.answered_by = begun.model
        self.record.race_winner = begun.race_winner
        self.record.first_token_s = round(time.perf_counter() - self._t0, 6)

    def ready(self) -> bool:
        """Is the next chunk (or the end) at hand without waiting on the model? Always for
        replayed chunks; for a live call, when its provider's stream can tell (an optional
        `ready()` on it, as `ChunkStream` has), else never. A consumer batches its writes
        by this: everything that is ready goes out together."""
        if self._replay or self._done or self._live is None:
            return self._started
        return self._live_ready is not None and self._live_ready()

    def __aiter__(self) -> RouteStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if not self._started:
            await self.start()
        chunk: StreamChunk | None
        if self._replay:
            chunk = self._replay.popleft()
        elif self._live is not None and not self._done:
            chunk = await self._next_live(self._live)
        else:
            chunk = None
        if chunk is None:
            await self._end()
            raise StopAsyncIteration
        self._tally.add(chunk)
        self._given.append(chunk)
        return chunk

    async def _next_live(self, live: Opened) -> StreamChunk | None:
        try:
            chunk = await anext(live.rest)
        except StopAsyncIteration:
            return None
        except (TaskrouteError, asyncio.CancelledError) as exc:
            self._live_failed(live, exc)
            raise
        self._live_tally.add(chunk)
        return chunk

    async def _end(self) -> None:
        if self._done:
            return
        live = self._live
        if self._tally.finish_reason is None:
            error = MalformedResponse("the stream ended before the answer finished",
                                      model=live.deployment if live else self.model)
            if live is not None:
                self._live_failed(live, error)
            else:
                self._finish(error)
            raise error
        if live is not None:
            await self._record_live(live)
        self._finish(None)

    async def _record_live(self, live: Opened) -> None:
        """The live call, once read to its end; gates judge it for the record only (the
        answer has gone out), and a judge is not called."""
        response = assemble(self._given, model=live.deployment)
        verdicts = await run_gates(self._engine.gates_for(self.decision), response,
                                   self._ctx.request, sync_only=True)
        live.call.latency_s = live.call.elapsed()
        live.call.answered("ok", verdicts, tally=self._live_tally)

    def _live_failed(self, live: Opened, exc: BaseException) -> None:
        live.call.failed(exc, self._live_tally)
        self._finish(exc)

    async def aclose(self) -> None:
        """Stop early: the upstream call is closed (and recorded as cancelled)."""
        if self._done or not self._started:
            self._done = True
            return
        live = self._live
        if live is not None:
            await close_quietly(live.rest)
            live.call.failed(asyncio.CancelledError(), self._live_tally)
        self._finish(asyncio.CancelledError(), closed_by_caller=True)

    def _finish(self, error: BaseException | None, *, closed_by_caller: bool = False) -> None:
        if self._done:
            return
        self._done = True
        record = self.record
        record.latency_s = round(time.perf_counter() - self._t0, 6)
        if error is not None:
            record.status = "error"
            record.error = (
                "the caller closed the stream before its end" if closed_by_caller
                else "cancelled" if isinstance(error, asyncio.CancelledError)
                else describe_error(error)
            )
        answer = "".join(self._tally.text) if error is None or closed_by_caller else None
        self._engine.finish(self._ctx, record, answer, error)
