"""The speculative race (per task class, `race:` in the policy): the cheap first pick and the
strong model start together. When the cheap answer arrives first and passes its gates with
enough confidence, it is returned and the strong call is cancelled (the connection is closed,
so the provider stops generating); otherwise the strong answer is used. Both calls are
recorded with what they cost — a cancelled call at least its input tokens.

The cheap answer's confidence is `gates.confidence.assess`: a gate's own, else its logprobs
(asked for upstream), else an estimate from the answer (Anthropic returns no logprobs), graded
by the race's `judge` model when the policy names one. Its `race_confidence` verdict says how
sure it was and which signal decided, won or lost; the context keeps it for the request's
record (`race_confidence`, `confidence_source`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from taskroute.calling.chain import Ask
from taskroute.calling.context import Answer, CallContext
from taskroute.calling.hedge import cancel_and_wait
from taskroute.exceptions import ConfigError, UpstreamError
from taskroute.gates.base import Gate
from taskroute.gates.confidence import Confidence, assess, graded
from taskroute.gates.runner import passed, run_gates
from taskroute.policy.model import RaceSpec
from taskroute.records import GateVerdict

LOST = "cancelled: finished together with the cheap answer, which won"


@dataclass(slots=True)
class RaceOutcome:
    answer: Answer | None       # None: neither answer was usable; escalate past both
    winner: str | None          # "cheap", "strong" or None


async def race(
    ctx: CallContext, spec: RaceSpec, ask: Ask[Answer], gates: Sequence[Gate],
    judge: Gate | None = None,
) -> RaceOutcome:
    """`judge`: the gate that calls the race's judge model, when the policy names one."""
    cheap = asyncio.ensure_future(_cheap(ctx, spec, ask, gates, judge))
    strong = asyncio.ensure_future(ask(spec.against, "race"))
    try:
        done, _ = await asyncio.wait({cheap, strong}, return_when=asyncio.FIRST_COMPLETED)
        if cheap in done or _result(strong) is None:
            # the cheap answer came first, or the strong call failed: the cheap one decides
            await asyncio.wait({cheap})
            good = _result(cheap)
            if good is not None:
                await _drop(ctx, strong)
                return RaceOutcome(good, "cheap")
        else:
            await cancel_and_wait([cheap])  # the strong answer came first: stop the cheap one
        answer = await _settled(strong)
        if answer is not None and await _gated(ctx, answer, gates):
            return RaceOutcome(answer, "strong")
        return RaceOutcome(None, None)
    finally:
        await cancel_and_wait([cheap, strong])


async def _cheap(
    ctx: CallContext, spec: RaceSpec, ask: Ask[Answer], gates: Sequence[Gate],
    judge: Gate | None,
) -> Answer | None:
    """The cheap answer when it is good enough, else None; recorded either way."""
    try:
        answer = await ask(ctx.decision.model, "first")
    except (UpstreamError, ConfigError):
        return None
    verdicts: tuple[GateVerdict, ...] = ()
    try:
        verdicts = await run_gates(gates, answer.response, ctx.request,
                                   judged=answer.call.span)
        if passed(verdicts) and spec.min_confidence > 0:
            sure = assess(verdicts, answer.response, ctx.decision.task)
            if judge is not None and sure.source == "estimate" and (
                    sure.value >= spec.min_confidence):
                (graded_by,) = await run_gates((judge,), answer.response, ctx.request,
                                               judged=answer.call.span)
                verdicts, sure = (*verdicts, graded_by), graded(sure, graded_by)
            ctx.confidence = sure
            verdicts += (_verdict(sure, spec.min_confidence),)
    except asyncio.CancelledError:
        ctx.record_answer(answer, "cancelled", verdicts)
        raise
    ok = passed(verdicts)
    ctx.record_answer(answer, "ok" if ok else "rejected", verdicts)
    return answer if ok else None


def _verdict(sure: Confidence, needed: float) -> GateVerdict:
    return GateVerdict(
        "race_confidence", sure.value >= needed,
        f"confidence {sure.value:.2f} from {sure.source} ({sure.detail}), needs {needed:.2f}",
        sure.value,
    )


async def _gated(ctx: CallContext, answer: Answer, gates: Sequence[Gate]) -> bool:
    verdicts = await run_gates(gates, answer.response, ctx.request, judged=answer.call.span)
    ok = passed(verdicts)
    ctx.record_answer(answer, "ok" if ok else "rejected", verdicts)
    return ok


async def _drop(ctx: CallContext, strong: asyncio.Future[Answer]) -> None:
    """Cancel the strong call; one that finished at the same moment is recorded unused."""
    if strong.done():
        answer = _result(strong)
        if answer is not None:
            answer.call.answered("cancelled", error=LOST)
        return
    await cancel_and_wait([strong])


async def _settled(future: asyncio.Future[Answer]) -> Answer | None:
    try:
        return await future
    except (UpstreamError, ConfigError):
        return None


def _result(future: asyncio.Future[Answer | None] | asyncio.Future[Answer]) -> Answer | None:
    """A finished call's answer; None when it failed upstream or was cancelled. Anything else
    it raised (a bug, a caller's mistake) is raised here."""
    if future.cancelled() or isinstance(future.exception(), UpstreamError | ConfigError):
        return None
    return future.result()
