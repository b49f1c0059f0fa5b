"""Holding a live stream's opening back for the gates that judge an opening.

A refusal comes first ("I can't help with that."), so a live answer that would fail the
refusal gate shows it in its first few dozen characters. Those are held — `chars` characters,
or what has come after `at_most_s` when the model is slow, whichever is first — and judged by
the task's opening gates before any of them goes out: a refusal there escalates to the next
model unseen, as a buffered answer would. Only gates that say they judge an opening
(`judges_opening = True`) run on it; the rest judge the whole answer when it ends — unless the
whole answer came inside the hold (a short one, or one cut short), when every plain gate judges
it there, so a truncated short answer escalates unseen too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from taskroute.calling.assemble import Tally, assemble
from taskroute.calling.context import CallContext
from taskroute.calling.once import Opened, Wiring, close_quietly, open_stream
from taskroute.exceptions import TaskrouteError
from taskroute.gates.base import Gate
from taskroute.gates.runner import passed, run_gates
from taskroute.policy.model import RefusalHold
from taskroute.records import AttemptRole
from taskroute.response import StreamChunk


def opening_gates(gates: Sequence[Gate]) -> tuple[Gate, ...]:
    return tuple(g for g in gates if getattr(g, "judges_opening", False))


def hold_for(ctx: CallContext, gates: Sequence[Gate]) -> RefusalHold | None:
    """The hold for this request's live stream: its task's, else the policy's; none when no
    gate of the task judges an opening, or the hold is off (`hold for refusal: false`)."""
    if not opening_gates(gates):
        return None
    task = ctx.policy.tasks.get(ctx.decision.task)
    hold = task.refusal_hold if task is not None and task.refusal_hold is not None \
        else ctx.policy.calling.refusal_hold
    return hold if hold.chars > 0 else None


def holding(hold: RefusalHold) -> Callable[
        [CallContext, Wiring, str, str, AttemptRole], Awaitable[Opened]]:
    """One call (the innermost layer, as `open_stream`) that opens a stream and holds its
    opening: a stream that breaks while held is this deployment's failure, nothing having
    gone out, so it is retried or failed over like any other."""

    async def once(ctx: CallContext, wiring: Wiring, model: str, deployment: str,
                   role: AttemptRole) -> Opened:
        opened = await open_stream(ctx, wiring, model, deployment, role)
        try:
            opened.rest = await read_opening(opened.rest, opened.held, hold)
        except (TaskrouteError, asyncio.CancelledError) as exc:
            await close_quietly(opened.rest)
            opened.call.failed(exc, _tally(opened.held))
            raise
        return opened

    return once


async def read_opening(rest: AsyncIterator[StreamChunk], held: list[StreamChunk],
                       hold: RefusalHold) -> AsyncIterator[StreamChunk]:
    """Read `rest` into `held` until the opening is held (or a tool call began: no refusal
    there), or the answer ended — then to the stream's end, its usage too; returns what is left
    of the stream. A chunk still on its way when `at_most_s` passes is not lost: the stream
    returned gives it first."""
    loop = asyncio.get_running_loop()
    until = loop.time() + hold.at_most_s
    size = 0
    ended = False
    for chunk in held:
        size += _opening_chars(chunk)
        ended = ended or chunk.finish_reason is not None
        if _tool_call(chunk):
            return rest
    while size < hold.chars or ended:
        step = asyncio.ensure_future(_next(rest))
        try:
            done, _ = await asyncio.wait((step,), timeout=max(until - loop.time(), 0.0))
        except BaseException:
            step.cancel()
            raise
        if not done:
            return Ahead(rest, step)
        try:
            chunk = step.result()
        except StopAsyncIteration:
            return rest
        held.append(chunk)
        size += _opening_chars(chunk)
        ended = ended or chunk.finish_reason is not None
        if _tool_call(chunk):
            break
    return rest


async def _next(rest: AsyncIterator[StreamChunk]) -> StreamChunk:
    return await anext(rest)


def _opening_chars(chunk: StreamChunk) -> int:
    delta = chunk.delta or {}
    return len(str(delta.get("content") or "")) + len(str(delta.get("refusal") or ""))


def _tool_call(chunk: StreamChunk) -> bool:
    delta = chunk.delta or {}
    return bool(delta.get("tool_calls"))


class Ahead:
    """A stream whose next chunk is already being read (`pending`): it comes first."""

    __slots__ = ("_pending", "_rest")

    def __init__(self, rest: AsyncIterator[StreamChunk],
                 pending: asyncio.Future[StreamChunk]) -> None:
        self._rest = rest
        self._pending: asyncio.Future[StreamChunk] | None = pending

    def __aiter__(self) -> Ahead:
        return self

    async def __anext__(self) -> StreamChunk:
        pending, self._pending = self._pending, None
        if pending is not None:
            return await pending
        return await anext(self._rest)

    def ready(self) -> bool:
        if self._pending is not None:
            return self._pending.done()
        ready = getattr(self._rest, "ready", None)
        return bool(ready is not None and ready())

    async def aclose(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:  # the read ends first (a stream cannot close mid-read)
            pending.cancel()
            await asyncio.wait((pending,))
            if not pending.cancelled():
                pending.exception()  # retrieved: the stream is abandoned, its outcome moot
        await close_quietly(self._rest)


def judged_opening(ctx: CallContext, gates: Sequence[Gate]
                   ) -> Callable[[Opened], Awaitable[bool]]:
    """Accept a live stream whose held opening passes the opening gates (the whole answer,
    when it is all held: every plain gate); one that fails is closed and recorded `rejected`
    (its tokens so far billed), and the chain goes on."""
    opening = opening_gates(gates)

    async def accept(opened: Opened) -> bool:
        response = assemble(opened.held, model=opened.deployment)
        whole = any(chunk.finish_reason for chunk in opened.held)
        verdicts = await run_gates(gates if whole else opening, response, ctx.request,
                                   sync_only=True)
        if passed(verdicts):
            return True
        await close_quietly(opened.rest)
        opened.call.answered("rejected", verdicts, tally=_tally(opened.held))
        return False

    return accept


def _tally(chunks: Sequence[StreamChunk]) -> Tally:
    tally = Tally()
    for chunk in chunks:
        tally.add(chunk)
    return tally
