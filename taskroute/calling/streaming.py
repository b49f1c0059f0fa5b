"""`RouteStream`: a routed answer, streamed.

`await stream.start()` runs until the first output is ready — escalating, retrying and failing
over freely until then, because nothing has gone out yet. After that the chunks pass through as
the model sends them. A stream that breaks off or stalls is rescued (`calling/rescue.py`): the
next model continues the answer in the same stream; where that is not sound, it is raised as an
error, never ended as if the answer were complete. Tasks with `buffer stream: true` (and raced
tasks, and answers asked for as JSON) are read whole and judged by their gates first, then
replayed. A live answer is judged
by its gates when it ends, for the record: one that failed them is logged `rejected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from taskroute.calling import rescue
from taskroute.calling.assemble import Tally, assemble
from taskroute.calling.context import CallContext, describe_error
from taskroute.calling.once import Opened, close_quietly
from taskroute.decision import Decision
from taskroute.exceptions import AnswerCutShort, MalformedResponse, TaskrouteError
from taskroute.gates.base import Gate
from taskroute.gates.runner import passed, run_gates
from taskroute.quality.budgets import Hold
from taskroute.records import CLIENT_CLOSED, GateVerdict, RouteRecord
from taskroute.response import StreamChunk

Admit = Callable[[], Awaitable[Hold | None]]   # a budget reservation awaited at the start


@dataclass(slots=True)
class StreamStart:
    replay: list[StreamChunk]     # chunks ready to go out first (a live start: its held ones)
    live: Opened | None           # the rest still arriving, when the answer is live
    model: str                    # the policy's model that answered
    race_winner: str | None = None
    deployment: str | None = None # the deployment that did (on failover, not `model`)


class StreamEngine(Protocol):
    """What a stream needs of the call path that made it (the `CallEngine`)."""

    async def start_stream(self, ctx: CallContext) -> StreamStart: ...

    def gates_for(self, decision: Decision) -> tuple[Gate, ...]: ...

    async def rescue_stream(
        self, ctx: CallContext, broken: str, partial: str, *, rescues: int = 0, spent: int = 0
    ) -> Opened: ...

    def finish(self, ctx: CallContext, record: RouteRecord, answer: str | None,
               error: BaseException | None, *, http_status: int | None = None) -> None: ...


class RouteStream:
    def __init__(self, engine: StreamEngine, ctx: CallContext, record: RouteRecord, *,
                 admit: Admit | None = None) -> None:
        self._engine = engine
        self._admit = admit
        self._ctx = ctx
        self.record = record
        self.decision = ctx.decision
        self.model: str | None = None
        self._t0 = time.perf_counter()
        self._replay: deque[StreamChunk] = deque()
        self._live: Opened | None = None
        # Everything the caller has been given (as given: a rescued answer's usage is the
        # client's), and the record's answer when it ends. A live start's replay is the live
        # call's held chunks and the rest follow as they arrive, so this is also what costs
        # the live call; it is the live call's own tally, which took the held chunks in as
        # they were held (`_taken_ahead` of them still to go out).
        self._tally = Tally()
        self._taken_ahead = 0
        self._given: list[StreamChunk] = []
        self._call_tally: Tally | None = None   # a rescuing call's own chunks, once one took over
        self._seam: rescue.Seam | None = None
        self._pending: deque[StreamChunk] = deque()  # read through the seam, not yet judged
        self._live_over = False                  # the live call ended (its chunks all out)
        self._rescues = 0
        self._carried = (0, 0)   # (input, output) tokens of the calls a rescue took over from
        self._started = False
        self._done = False
        self._live_ready: Callable[[], bool] | None = None
        self._answer_begun = False  # the caller was sent a response before the model answered

    @property
    def label(self) -> str | None:
        """What a user may be shown of the route ("Quick answer"), known before the model is
        called (as is `decision`): show it while `start()` runs."""
        return self.decision.label

    def answer_begun(self) -> None:
        """The caller has been sent its response already (a gateway's route event): a failure
        from here on reaches it as an event, and is logged with the status it got, 200."""
        self._answer_begun = True

    async def start(self) -> None:
        """Run until the first output is ready; raises when every model failed before it."""
        if self._started:
            return
        self._started = True
        try:
            if self._admit is not None:  # the budgets' shared counters admit it first
                self._ctx.hold = await self._admit()
            begun = await self._engine.start_stream(self._ctx)
        except (TaskrouteError, asyncio.CancelledError) as exc:
            self._finish(exc)
            raise
        self._replay.extend(begun.replay)
        self._live = begun.live
        if begun.live is not None:
            self._live_ready = getattr(begun.live.rest, "ready", None)
            self._tally, self._taken_ahead = begun.live.tally, len(begun.replay)
        self.record.answered(begun.model, begun.deployment or begun.model)
        self.model = self.record.answered_by  # the deployment answering
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
        if self._call_tally is not None:
            self._call_tally.add(chunk)
            if chunk.data.get("usage"):
                chunk = _with_carried(chunk, self._carried)
        if self._taken_ahead:
            self._taken_ahead -= 1  # a held chunk: taken in as it was held
        else:
            self._tally.add(chunk)
        self._given.append(chunk)
        return chunk

    async def _next_live(self, live: Opened) -> StreamChunk | None:
        while not self._live_over:
            try:
                chunk = self._pending.popleft() if self._pending else await anext(live.rest)
            except StopAsyncIteration:
                if self._seam is not None and self._seam.open:  # a short continuation
                    self._release(self._seam.close())
                    if self._replay:
                        return self._replay.popleft()
                    if self._pending:  # it ended cut short: judged as the loop reads it
                        continue
                if self._tally.finish_reason is not None or any(
                        c.finish_reason for c in self._replay):
                    self._live_over = True
                    return self._replay.popleft() if self._replay else None
                failure: TaskrouteError = MalformedResponse(
                    "the stream ended before the answer finished", model=live.deployment)
            except asyncio.CancelledError as exc:
                self._live_failed(live, exc)
                raise
            except TaskrouteError as exc:
                failure = exc
            else:
                if self._seam is not None and self._seam.open:
                    self._release(self._seam.take(chunk))
                    if self._replay:
                        return self._replay.popleft()
                    continue
                if chunk.finish_reason != "length" or chunk.delta_text:
                    return chunk
                tail, cut = await self._cut_short(live, chunk)
                if cut is None:  # the caller's own limit, or nothing can mend it
                    self._replay.extend(tail)
                    return chunk
                live = await self._rescue(live, cut, unsent=[chunk, *tail])
                if self._replay:
                    return self._replay.popleft()
                continue
            live = await self._rescue(live, failure)
            if self._replay:
                return self._replay.popleft()
        return None

    def _release(self, chunks: list[StreamChunk]) -> None:
        """What the seam gives out goes out, up to a cut end (`finish_reason: length`, no
        text): that one, and what came after it, are read again as the live call's, so a
        continuation cut short within the seam is judged as any other cut."""
        cut = next((i for i, c in enumerate(chunks)
                    if c.finish_reason == "length" and not c.delta_text), len(chunks))
        self._replay.extend(chunks[:cut])
        self._pending.extend(chunks[cut:])

    async def _cut_short(self, live: Opened, end: StreamChunk
                         ) -> tuple[list[StreamChunk], AnswerCutShort | None]:
        """The live answer ended with `finish_reason: length` (`end`): what is left of the
        stream (its usage, normally), and — when a gate judging cuts (`not_truncated`) says it
        was cut short of the caller's limit and the next model can continue it — the failure
        to rescue it from. Not an error otherwise: the cut end goes out as it came."""
        gates = [g for g in self._engine.gates_for(self.decision)
                 if getattr(g, "judges_cut", False)]
        if not gates or not self._ctx.policy.calling.rescue_streams or not rescue.rescuers(
                self.decision.chain, live.model, rescues=self._rescues) or rescue.plan(
                self._ctx.request, self._given, self._tally).action != "continue":
            return [], None
        # The tail is kept as this call sent it, its usage this call's own: so it is billed
        # when the cut is rescued, and `__anext__` adds the earlier calls' usage as it goes
        # out. The gates judge the whole answer's usage against the caller's limit.
        tail: list[StreamChunk] = list(self._pending)
        self._pending.clear()
        with contextlib.suppress(TaskrouteError):  # a tail that breaks: judged on what came
            async for chunk in live.rest:
                tail.append(chunk)
        response = assemble([_with_carried(c, self._carried) if c.data.get("usage") else c
                             for c in (end, *tail)], model=live.deployment)
        for gate in gates:
            verdict = gate.check(response, self._ctx.request)
            if isinstance(verdict, GateVerdict) and not verdict.passed:
                return tail, AnswerCutShort(f"{live.deployment}: {verdict.reason}",
                                            model=live.deployment)
        return tail, None

    async def _rescue(self, live: Opened, failure: TaskrouteError, *,
                      unsent: list[StreamChunk] | None = None) -> Opened:
        """The live call broke (or stalled, or was cut short) after its answer began: the next
        model continues it, or the stream ends with `failure` where that is not sound or
        nobody can. `unsent`: the call's chunks read but held back (a cut answer's end)."""
        tally = self._call_tally or self._tally
        live.call.failed(failure, tally.plus(unsent) if unsent else tally)
        await close_quietly(live.rest)
        broken = live.call.recorded
        if broken is not None:  # the answer is both calls': so is the usage the client gets
            self._carried = (self._carried[0] + broken.input_tokens,
                             self._carried[1] + broken.output_tokens)
        plan = rescue.plan(self._ctx.request, self._given, self._tally)
        if not self._ctx.policy.calling.rescue_streams or plan.action == "refuse":
            why = plan.reason if plan.action == "refuse" else "rescue streams: false"
            self._finish(failure, note=f"not continued: {why}")
            raise failure
        partial = plan.partial if plan.action == "continue" else ""
        try:
            opened = await self._engine.rescue_stream(self._ctx, live.model, partial,
                                                      rescues=self._rescues,
                                                      spent=self._carried[1])
        except TaskrouteError as exc:
            self._finish(failure, note=f"no model could continue it ({describe_error(exc)})")
            raise failure from exc
        except asyncio.CancelledError:
            self._finish(asyncio.CancelledError(), closed_by_caller=True)
            raise
        self._rescues += 1
        self.record.seam_chars = len(plan.partial)
        self.record.rescued_by = opened.deployment
        self._live, self._call_tally = opened, Tally()
        self._live_ready = getattr(opened.rest, "ready", None)
        self._seam = rescue.Seam(partial)
        for chunk in opened.held:
            self._replay.extend(self._seam.take(chunk))
        return opened

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
        answer has gone out): one that fails is recorded `rejected`, and so is the request; a
        judge is not called: with such a gate the answer is recorded `unchecked`, and so is
        the request."""
        gates = self._engine.gates_for(self.decision)
        judged, given = live.judged, self._given
        if judged is not None and len(given) == len(live.held) and given[0] is live.held[0]:
            verdicts = judged  # all of it was held and judged so (`calling/hold.py`)
        else:  # the whole answer as given, taken in chunk by chunk as it went out
            response = self._tally.response(model=live.deployment)
            verdicts = await run_gates(gates, response, self._ctx.request, sync_only=True)
        unrun = [getattr(g, "name", type(g).__name__) for g in gates
                 if inspect.iscoroutinefunction(g.check)]
        live.call.latency_s = live.call.elapsed()
        tally = self._call_tally or self._tally
        if not passed(verdicts):  # too late to escalate: the client has it; the log says so
            self.record.status = "rejected"
            self.record.error = "the live answer failed its gates after it went out: " + ", ".join(
                v.gate for v in verdicts if not v.passed)
            live.call.answered("rejected", verdicts, tally=tally)
        elif unrun:
            self.record.status = "unchecked"
            live.call.answered("unchecked", verdicts, tally=tally,
                               error=f"unchecked: {', '.join(unrun)} cannot judge a live stream")
        else:
            live.call.answered("ok", verdicts, tally=tally)

    def _live_failed(self, live: Opened, exc: BaseException) -> None:
        live.call.failed(exc, self._call_tally or self._tally)
        self._finish(exc)

    async def aclose(self) -> None:
        """Stop early: the upstream call is closed (and recorded as cancelled)."""
        if self._done:
            return
        if not self._started:  # never run: recorded (and its budget hold settled) all the same
            self._started = True
            self._finish(asyncio.CancelledError(), closed_by_caller=True)
            return
        if self._taken_ahead:  # closed while the held opening went out: only what was given
            self._tally, self._taken_ahead = Tally.of(self._given), 0
        live = self._live
        if live is not None:
            await close_quietly(live.rest)
            if live.call.recorded is None:
                live.call.failed(asyncio.CancelledError(), self._call_tally or self._tally)
        self._finish(asyncio.CancelledError(), closed_by_caller=True)

    def _finish(self, error: BaseException | None, *, closed_by_caller: bool = False,
                note: str | None = None) -> None:
        if self._done:
            return
        self._done = True
        record = self.record
        record.latency_s = round(time.perf_counter() - self._t0, 6)
        hung_up = closed_by_caller or isinstance(error, asyncio.CancelledError)
        if error is not None:
            record.status = "error"
            record.error = CLIENT_CLOSED if hung_up else describe_error(error)
            if note is not None and not hung_up:
                record.error += f"; {note}"
        answer = "".join(self._tally.text) if error is None or closed_by_caller else None
        # A gateway's stream that fails after its start has sent its client a 200 (the error
        # goes out as an event); hang-ups are 499.
        started = (self.model is not None or self._answer_begun) and \
            self._ctx.origin.api != "library"
        status = 200 if error is not None and started and not hung_up else None
        self._engine.finish(self._ctx, record, answer, error, http_status=status)


def _with_carried(chunk: StreamChunk, carried: tuple[int, int]) -> StreamChunk:
    """A rescuing call's usage chunk as the client gets it: the tokens of the calls it took
    over from added (the client's answer is theirs and its together, and so is the bill: the
    log sums the same attempts). The call's own record keeps its own usage (tallied first)."""
    usage = dict(chunk.data["usage"])
    prompt = int(usage.get("prompt_tokens") or 0) + carried[0]
    completion = int(usage.get("completion_tokens") or 0) + carried[1]
    usage.update(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)
    return StreamChunk({**chunk.data, "usage": usage})
