"""Calling one deployment once — the innermost layer. Each call ends as exactly one recorded
attempt when it fails or is cancelled; a successful one returns what it got (the chain records
it once its gates have judged it, or the stream once it has been read).

The provider enforces the connect / first-token / total timeouts; a backstop here turns a
provider that overruns them into an `UpstreamTimeout` all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from taskroute.calling.assemble import Tally, assemble, carries_output
from taskroute.calling.breaker import Breakers
from taskroute.calling.context import Answer, CallContext, describe_error
from taskroute.calling.hedge import FirstTokenTimes
from taskroute.calling.retry import counts_against_deployment
from taskroute.exceptions import ConfigError, MalformedResponse, TaskrouteError, UpstreamTimeout
from taskroute.policy.model import split_model_id
from taskroute.providers.base import Provider, Timeouts
from taskroute.records import AttemptRole
from taskroute.response import StreamChunk

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
    model: str
    deployment: str
    role: AttemptRole
    started_at: float
    started: float                  # perf_counter at the start
    first_token_s: float | None
    ended: bool = False             # the stream already finished while we held it
    extra: list[StreamChunk] = field(default_factory=list)


async def complete_once(
    ctx: CallContext, wiring: Wiring, model: str, deployment: str, role: AttemptRole
) -> Answer:
    started_at, t0 = time.time(), time.perf_counter()
    try:
        provider, upstream_model = wiring.provider(deployment)
        async with asyncio.timeout(wiring.timeouts.total + BACKSTOP_GRACE_S):
            response = await provider.complete(
                ctx.request, model=upstream_model, timeouts=wiring.timeouts
            )
    except (TaskrouteError, TimeoutError, asyncio.CancelledError) as exc:
        _failed(ctx, wiring, exc, model, deployment, role, started_at, t0)
        if isinstance(exc, TimeoutError):
            raise _translated(exc, deployment) from None
        raise
    latency = time.perf_counter() - t0
    wiring.breakers[deployment].success()
    wiring.first_tokens.add(f"{deployment}|complete", latency)
    return Answer(response, model, deployment, role, started_at, latency, latency)


async def open_stream(
    ctx: CallContext, wiring: Wiring, model: str, deployment: str, role: AttemptRole
) -> Opened:
    """Start a stream and read until its first output (holding a bare role chunk back)."""
    started_at, t0 = time.time(), time.perf_counter()
    held: list[StreamChunk] = []
    rest: AsyncIterator[StreamChunk] | None = None
    timeouts = wiring.timeouts
    try:
        provider, upstream_model = wiring.provider(deployment)
        rest = aiter(provider.stream(ctx.request, model=upstream_model, timeouts=timeouts))
        async with asyncio.timeout(timeouts.connect + timeouts.first_token + BACKSTOP_GRACE_S):
            async for chunk in rest:
                held.append(chunk)
                if carries_output(chunk):
                    break
            else:
                raise MalformedResponse(
                    "the stream ended before any answer", model=deployment
                )
    except (TaskrouteError, TimeoutError, asyncio.CancelledError) as exc:
        await close_quietly(rest)
        _failed(ctx, wiring, exc, model, deployment, role, started_at, t0)
        if isinstance(exc, TimeoutError):
            raise _translated(exc, deployment) from None
        raise
    first = time.perf_counter() - t0
    wiring.breakers[deployment].success()
    wiring.first_tokens.add(f"{deployment}|stream", first)
    return Opened(rest, held, model, deployment, role, started_at, t0, first)


def _failed(
    ctx: CallContext, wiring: Wiring, exc: BaseException, model: str, deployment: str,
    role: AttemptRole, started_at: float, t0: float,
) -> None:
    breaker = wiring.breakers[deployment]
    cancelled = isinstance(exc, asyncio.CancelledError)
    if cancelled:
        breaker.release()
    elif counts_against_deployment(_translated(exc, deployment)):
        breaker.failure()
    elif isinstance(exc, ConfigError):
        breaker.release()
    else:
        breaker.success()  # it answered, if only to say no: the deployment is up
    ctx.record(
        model=model, deployment=deployment, role=role,
        status="cancelled" if cancelled else "error",
        started_at=started_at, latency_s=time.perf_counter() - t0,
        error="cancelled" if cancelled else describe_error(_translated(exc, deployment)),
    )


def _translated(exc: BaseException, deployment: str) -> BaseException:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{deployment} did not answer in time", model=deployment)
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
    its gates can judge it; a stream that breaks off is this deployment's failure."""
    opened = await open_stream(ctx, wiring, model, deployment, role)
    tally = Tally()
    chunks = list(opened.held)
    for chunk in chunks:
        tally.add(chunk)
    try:
        async for chunk in opened.rest:
            chunks.append(chunk)
            tally.add(chunk)
        if tally.finish_reason is None:
            raise MalformedResponse("the stream ended before the answer finished",
                                    model=deployment)
    except (TaskrouteError, asyncio.CancelledError) as exc:
        await close_quietly(opened.rest)
        stream_failed(ctx, wiring, opened, tally, exc)
        raise
    response = assemble(chunks, model=deployment)
    latency = time.perf_counter() - opened.started
    return Answer(response, model, deployment, role, opened.started_at, latency,
                  opened.first_token_s, chunks)


def stream_failed(
    ctx: CallContext, wiring: Wiring, opened: Opened, tally: Tally, exc: BaseException
) -> None:
    """Record a stream that failed or was cancelled after its first output."""
    cancelled = isinstance(exc, asyncio.CancelledError)
    breaker = wiring.breakers[opened.deployment]
    if cancelled:
        breaker.release()
    elif counts_against_deployment(exc):
        breaker.failure()
    input_tokens, output_tokens = tally.tokens(ctx.input_estimate)
    ctx.record(
        model=opened.model, deployment=opened.deployment, role=opened.role,
        status="cancelled" if cancelled else "error", started_at=opened.started_at,
        latency_s=time.perf_counter() - opened.started, first_token_s=opened.first_token_s,
        input_tokens=input_tokens, output_tokens=output_tokens,
        error="cancelled" if cancelled else describe_error(exc),
    )
