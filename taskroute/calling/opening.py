"""Reading a live stream's opening into its held chunks before any of it goes out (the
refusal hold, `calling/hold.py`): `chars` characters of answer, or what has come after
`at_most_s`, whichever is first, or as soon as the opening gates are sure of what has come
(`settled`, when the hold may release early) — and an answer that ends meanwhile, to its
end. A read still
under way when the time is up is not cancelled (a stream cannot lose a chunk mid-read): the
stream handed on gives its chunk first (`Ahead`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from taskroute.policy.model import RefusalHold
from taskroute.response import StreamChunk


async def read_opening(rest: AsyncIterator[StreamChunk], held: list[StreamChunk],
                       hold: RefusalHold, settled: Callable[[str], bool] | None = None
                       ) -> AsyncIterator[StreamChunk]:
    """Read `rest` into `held` until the opening is held (or a tool call began: no refusal
    there; or `settled` says the text so far can no longer become one), or the answer ended —
    then to the stream's end, its usage too; returns what is left of the stream. A chunk still
    on its way when `at_most_s` passes is not lost: the stream returned gives it first."""
    loop = asyncio.get_running_loop()
    until = loop.time() + hold.at_most_s
    size = 0
    ended = False
    text = ""  # the answer's text so far, for `settled`
    for chunk in held:
        size += _opening_chars(chunk)
        text += chunk.delta_text
        ended = ended or chunk.finish_reason is not None
        if _tool_call(chunk):
            return rest
    if not ended and settled is not None and settled(text):
        return rest
    at_hand = getattr(rest, "ready", None)  # a chunk already read off the wire needs no timer
    while size < hold.chars or ended:
        if at_hand is not None and at_hand():
            try:
                chunk = await anext(rest)
            except StopAsyncIteration:
                return rest
        else:
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
        if not ended and settled is not None:
            text += chunk.delta_text
            if settled(text):
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
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:  # (callers close it quietly: `close_quietly`)
            await aclose()
