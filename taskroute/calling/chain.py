"""Escalating along the decision's chain — the outer layer. A model that fails (every
deployment, after retries) or whose answer a gate rejects hands the request to the next; when
none is left, `ChainExhausted` carries every attempt — as `ChainTimedOut` (504) when every model
timed out or the request's deadline passed, as `ChainRateLimited` (429, with the soonest
Retry-After) when every model was rate limited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from taskroute.calling.context import Answer, CallContext
from taskroute.calling.deadline import Deadline
from taskroute.calling.failover import soonest_rate_limit
from taskroute.exceptions import (
    ChainExhausted,
    ChainRateLimited,
    ChainTimedOut,
    ChainTooLong,
    ConfigError,
    ContextTooLong,
    UpstreamError,
    UpstreamTimeout,
)
from taskroute.gates.base import Gate
from taskroute.gates.runner import passed, run_gates
from taskroute.records import Attempt, AttemptRole

T = TypeVar("T")
Ask = Callable[[str, AttemptRole], Awaitable[T]]   # (model, role) → its answer or an error


async def escalate(
    ctx: CallContext, models: Sequence[str], ask: Ask[T],
    accept: Callable[[T], Awaitable[bool]], *, first_role: AttemptRole = "first",
) -> T:
    """The first answer along `models` that `accept` takes."""
    failures: list[BaseException | None] = []   # each model's error; None: a gate said no
    too_long: tuple[str, int] | None = None     # the largest window that refused it as too long
    for i, model in enumerate(models):
        if ctx.out_of_time():
            raise exhausted(ctx.attempts, models, failures, deadline=ctx.deadline)
        role: AttemptRole = first_role if i == 0 else "escalation"
        window = ctx.policy.models[model].context
        if too_long is not None and window <= too_long[1]:
            ctx.begin(model, model, role).skipped(
                f"ContextTooLong: its context window ({window:,} tokens) is no larger than "
                f"that of {too_long[0]}, which refused the request as too long")
            failures.append(ContextTooLong("skipped", status=400, model=model))
            continue
        try:
            answer = await ask(model, role)
        except (UpstreamError, ConfigError) as exc:
            failures.append(exc)
            if isinstance(exc, ContextTooLong):  # never retried: on to a larger window
                too_long = (model, max(window, too_long[1] if too_long else 0))
            continue  # recorded by the layer that saw it
        if await accept(answer):
            return answer
        failures.append(None)
    raise exhausted(ctx.attempts, models, failures,
                    deadline=ctx.deadline if ctx.out_of_time() else None)


def gated(ctx: CallContext, gates: Sequence[Gate]) -> Callable[[Answer], Awaitable[bool]]:
    """Accept an answer when every gate passes; record it either way."""

    async def accept(answer: Answer) -> bool:
        verdicts = await run_gates(gates, answer.response, ctx.request, judged=answer.call.span)
        ok = passed(verdicts)
        ctx.record_answer(answer, "ok" if ok else "rejected", verdicts)
        return ok

    return accept


async def accept_any(_: object) -> bool:
    return True


def exhausted(
    attempts: Sequence[Attempt], models: Sequence[str],
    failures: Sequence[BaseException | None] = (), *, deadline: Deadline | None = None,
) -> ChainExhausted:
    """The error for a chain with no acceptable answer: `ChainTimedOut` (a 504) when every
    model failed by timing out or `deadline` (passed) ran out; `ChainRateLimited` (a 429)
    when every model was rate limited."""
    tried = "; ".join(_attempt_line(a) for a in attempts) or "no model was called"
    if deadline is not None:
        return ChainTimedOut(
            f"the request's deadline of {deadline.seconds:g}s passed before any model in the "
            f"chain ({' → '.join(models)}) gave an acceptable answer: {tried}",
            attempts=attempts,
        )
    message = f"no model in the chain ({' → '.join(models)}) gave an acceptable answer: {tried}"
    limited = soonest_rate_limit(failures)
    if limited is not None:
        return ChainRateLimited(message, attempts=attempts, retry_after=limited.retry_after)
    timed_out = bool(failures) and all(isinstance(f, UpstreamTimeout) for f in failures)
    too_long = bool(failures) and all(isinstance(f, ContextTooLong) for f in failures)
    kind = ChainTimedOut if timed_out else ChainTooLong if too_long else ChainExhausted
    return kind(message, attempts=attempts)


def _attempt_line(attempt: Attempt) -> str:
    if attempt.status == "rejected":
        failed = [v for v in attempt.verdicts if not v.passed]
        why = ", ".join(f"{v.gate} ({v.reason})" if v.reason else v.gate for v in failed)
        return f"{attempt.deployment} rejected by {why}"
    return f"{attempt.deployment} {attempt.status}: {attempt.error or ''}".rstrip(": ")
