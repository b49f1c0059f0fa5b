"""Calling one model: its deployments in order (`also at` in the policy), skipping those whose
circuit is open, each retried as `RetryPolicy` says, and — when hedging is on — racing the next
deployment once the first is slower than its recent p95 to what the call waits for (the first
token, the held opening, the whole answer: `hedge.FirstTokenTimes`)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from taskroute.calling.context import CallContext
from taskroute.calling.hedge import hedged
from taskroute.calling.once import Wiring
from taskroute.calling.retry import RetryPolicy
from taskroute.exceptions import (
    ConfigError,
    ContextTooLong,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from taskroute.records import AttemptRole

T = TypeVar("T")
Once = Callable[[str, AttemptRole], Awaitable[T]]   # (deployment, role) → one call


async def call_model(
    ctx: CallContext, wiring: Wiring, model: str, role: AttemptRole, once: Once[T],
    retry: RetryPolicy, *, hedge_kind: str | None = None,
    discard: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """The first answer any deployment of `model` gives; the last error when none does.
    `hedge_kind` ("complete", "stream", "stream held", "stream whole") turns hedging on,
    reading that kind's timings."""
    models = ctx.policy.models
    deployments = models[model].deployments
    errors: list[UpstreamError | ConfigError] = []
    too_long = 0  # the largest window of a deployment that refused the request as too long
    for i, deployment in enumerate(deployments):
        if ctx.out_of_time():
            break  # nothing more is started; the chain reports the deadline
        this_role: AttemptRole = role if i == 0 else "failover"
        window = models[deployment].context if deployment in models else models[model].context
        if too_long and window <= too_long:
            ctx.begin(model, deployment, this_role).skipped(
                f"ContextTooLong: its context window ({window:,} tokens) cannot hold what a "
                f"{too_long:,}-token window refused as too long")
            continue
        breaker = wiring.breakers[deployment]
        if not breaker.allow():
            ctx.begin(model, deployment, this_role).skipped(
                f"CircuitOpen: {deployment} is cooling down after failures")
            continue
        backup = deployments[i + 1] if hedge_kind and i + 1 < len(deployments) else None
        call = _hedging(wiring, once, deployment, backup, hedge_kind, discard)
        try:
            return await retry.run(call, this_role, may_retry=breaker.allow,
                                   deadline=ctx.deadline)
        except (UpstreamError, ConfigError) as exc:
            errors.append(exc)
            if isinstance(exc, ContextTooLong):
                too_long = max(too_long, window)
    if errors:
        raise soonest_rate_limit(errors) or errors[-1]
    if ctx.out_of_time():
        raise UpstreamTimeout(f"the request's deadline passed before {model} was called",
                              model=model, phase="deadline")
    raise UpstreamError(
        f"every deployment of {model} is cooling down after failures (circuit open)", model=model
    )


def soonest_rate_limit(errors: Sequence[BaseException | None]) -> RateLimited | None:
    """When every error is a 429: the one to wait least for (one without a Retry-After
    only when none gave one); else None."""
    if not errors or not all(isinstance(e, RateLimited) for e in errors):
        return None
    limited = [e for e in errors if isinstance(e, RateLimited)]
    return min(limited, key=lambda e: math.inf if e.retry_after is None else e.retry_after)


def _hedging(
    wiring: Wiring, once: Once[T], deployment: str, backup: str | None,
    kind: str | None, discard: Callable[[T], Awaitable[None]] | None,
) -> Callable[[AttemptRole], Awaitable[T]]:
    """`once` on `deployment`; on a first try with a known p95 and a backup, hedged."""

    async def call(role: AttemptRole) -> T:
        after = wiring.first_tokens.threshold(f"{deployment}|{kind}") if kind else None
        if backup is None or after is None or role == "retry":
            return await once(deployment, role)

        def second() -> Awaitable[T] | None:
            return once(backup, "hedge") if wiring.breakers[backup].allow() else None

        return await hedged(lambda: once(deployment, role), second, after, discard=discard)

    return call
