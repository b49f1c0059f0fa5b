"""Calling one deployment once — the innermost layer. Each call is a `Call` of the request's
context: one that fails or is cancelled is recorded here with its error; a successful one
returns what it got, its `Call` still open (the chain ends it once its gates have judged it,
the stream once it has been read, the context when the request finishes).

The provider enforces the connect / first-token / total timeouts; a backstop here turns a
provider that overruns them into an `UpstreamTimeout` all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from taskroute.calling.assemble import Tally, carries_output
from taskroute.calling.attempt import Call
from taskroute.calling.breaker import Breakers
from taskroute.calling.context import Answer, CallContext
from taskroute.calling.hedge import FirstTokenTimes
from taskroute.calling.opening import read_opening
from taskroute.calling.scrub import scrub_error
from taskroute.calling.stall import StallGuard
from taskroute.exceptions import ConfigError, MalformedResponse, TaskrouteError, UpstreamTimeout
from taskroute.policy.model import RefusalHold, split_model_id
from taskroute.providers.base import Provider, Timeouts
from taskroute.records import AttemptRole, GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk
from taskroute.tracing.propagation import outgoing

BACKSTOP_GRACE_S = 1.0


@dataclass(slots=True)
class Wiring:
    """What a call needs from the engine: the providers and each deployment's health."""

    providers: Mapping[str, Provider]
    timeouts: Timeouts
    breakers: Breakers
    first_tokens: FirstTokenTimes

    def provider(self, deployment: str) -> tuple[Provider, str]:
        name, upstream_model = split_model_id(deployment)
        provider = self.providers.get(name)
        if provider is None:
            raise ConfigError(f"no provider '{name}' is configured for {deployment}")
        return provider, upstream_model


@dataclass(slots=True)
class Opened:
    """A stream whose first output has arrived: held chunks, then the live rest."""

    rest: AsyncIterator[StreamChunk]
    held: list[StreamChunk]
    call: Call
    # the held chunks taken in (`assemble.Tally`): the refusal hold judges the opening off it,
    # and the stream's record goes on from it as the rest arrives, so none is read twice
    tally: Tally
    # the whole answer came inside the refusal hold and passed every gate there: its
    # verdicts, so the record's judging need not assemble it and run the gates again
    judged: tuple[GateVerdict, ...] | None = None

    @property
    def model(self) -> str:
        return self.call.model

    @property
    def deployment(self) -> str:
        return self.call.deployment


async def complete_once(
    ctx: CallContext, wiring: Wiring, model: str, deployment: str, role: AttemptRole
) -> Answer:
    call = ctx.begin(model, deployment, role, wiring.breakers[deployment])
    try:
        provider, upstream_model = wiring.provider(deployment)
        timeouts = ctx.timeouts(wiring.timeouts)
        async with asyncio.timeout(_backstop(ctx, timeouts.total)):
            with outgoing(call.span):
                response = await provider.complete(
                    ctx.outgoing, model=upstream_model, timeouts=timeouts
                )
    except (TaskrouteError, TimeoutError, asyncio.CancelledError) as exc:
        call.failed(_translated(exc, deployment, ctx))
        if isinstance(exc, TimeoutError):
            raise _translated(exc, deployment, ctx) from None
        raise
    call.arrived(response)
    wiring.breakers[deployment].success()
    wiring.first_tokens.add(f"{deployment}|complete", call.elapsed())
    return Answer(response, call)


async def open_stream(
    ctx: CallContext, wiring: Wiring, model: str, deployment: str, role: AttemptRole,
    *, request: ChatRequest | None = None, hold: RefusalHold | None = None,
    settled: Callable[[str], bool] | None = None,
) -> Opened:
    """Start a stream and read until its first output (holding a bare role chunk back); the
    rest is guarded against stalls. `request` replaces what providers are sent (a rescue's
    continuation); `hold`: read on until the opening is held too (`calling/opening.py`; or,
    released early, until `settled` says the text so far is sure) —
    what the hedge's timings then measure (as `stream held`), since that is when it is out."""
    call = ctx.begin(model, deployment, role, wiring.breakers[deployment])
    held: list[StreamChunk] = []
    rest: AsyncIterator[StreamChunk] | None = None
    timeouts = ctx.timeouts(wiring.timeouts)
    try:
        provider, upstream_model = wiring.provider(deployment)
        rest = aiter(provider.stream(request or ctx.outgoing, model=upstream_model,
                                     timeouts=timeouts))
        async with asyncio.timeout(_backstop(ctx, timeouts.connect + timeouts.first_token)):
            with outgoing(call.span):  # the request goes out as the first chunk is asked for
                async for chunk in rest:
                    held.append(chunk)
                    if carries_output(chunk):
                        break
                else:
                    raise MalformedResponse(
                        "the stream ended before any answer", model=deployment
                    )
        call.first_token_s = call.elapsed()
        rest = StallGuard(rest, stall_seconds(ctx), deployment)
        if hold is not None:
            rest = await read_opening(rest, held, hold, settled)
    except (TaskrouteError, TimeoutError, asyncio.CancelledError) as exc:
        await close_quietly(rest)
        opened = call.first_token_s is not None  # broke while its opening was held
        call.failed(_translated(exc, deployment, ctx), Tally.of(held) if opened else None)
        if isinstance(exc, TimeoutError):
            raise _translated(exc, deployment, ctx) from None
        raise
    wiring.breakers[deployment].success()
    wiring.first_tokens.add(f"{deployment}|{STREAM_HELD if hold else 'stream'}",
                            call.elapsed() if hold else call.first_token_s)
    return Opened(rest, held, call, Tally.of(held))


STREAM_HELD = "stream held"   # the hedge's timings of streams whose opening is held
STREAM_WHOLE = "stream whole"  # ... of buffered streams, read whole before they go out



def stall_seconds(ctx: CallContext) -> float:
    """The stream's inter-token timeout: its task's, else the policy's."""
    task = ctx.policy.tasks.get(ctx.decision.task)
    if task is not None and task.stall_s is not None:
        return task.stall_s
    return ctx.policy.calling.stall_timeout_s


def _backstop(ctx: CallContext, seconds: float) -> float:
    """The backstop for a provider's own timeouts: a grace past them, never past the
    request's deadline."""
    limit = seconds + BACKSTOP_GRACE_S
    return limit if ctx.deadline is None else max(min(limit, ctx.deadline.left()), 0.0)


def _translated(exc: BaseException, deployment: str, ctx: CallContext) -> BaseException:
    """The error as recorded and raised: a backstop timeout as ours; an upstream message
    scrubbed of the prompt it echoes, unless the policy logs content."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{deployment} did not answer in time", model=deployment)
    if not ctx.policy.log_content:
        return scrub_error(exc, ctx.request.all_text)
    return exc


async def close_quietly(stream: AsyncIterator[StreamChunk] | None) -> None:
    """Close a provider's stream (its connection goes back or is dropped), whatever state
    it is in; closing never raises."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    with contextlib.suppress(Exception):  # the stream is being abandoned; its error is moot
        await aclose()


async def read_whole(
    ctx: CallContext, wiring: Wiring, model: str, deployment: str, role: AttemptRole
) -> Answer:
    """A streamed call read to its end before anything goes out (`buffer stream: true`), so
    its gates can judge it; a stream that breaks off is this deployment's failure. The whole
    answer is what the hedge waits for, so its time is what the hedge's timings measure (as
    `stream whole`); its first token still counts among the live streams'."""
    opened = await open_stream(ctx, wiring, model, deployment, role)
    tally = opened.tally
    chunks = list(opened.held)
    try:
        async for chunk in opened.rest:
            chunks.append(chunk)
            tally.add(chunk)
        if tally.finish_reason is None:
            raise MalformedResponse("the stream ended before the answer finished",
                                    model=deployment)
    except (TaskrouteError, asyncio.CancelledError) as exc:
        await close_quietly(opened.rest)
        opened.call.failed(exc, tally)
        raise
    response = tally.response(model=deployment)
    first_token_s = opened.call.first_token_s
    opened.call.arrived(response)
    opened.call.first_token_s = first_token_s
    wiring.first_tokens.add(f"{deployment}|{STREAM_WHOLE}", opened.call.elapsed())
    return Answer(response, opened.call, chunks)
