"""Retrying one deployment: capped exponential backoff with jitter, for errors a retry can
fix — timeouts, 5xx, 429 (waiting what Retry-After asks), 408, connection resets and malformed
bodies. The caller's own mistakes (other 4xx) are not retried. A 429 asking for a longer wait
than the backoff cap, or a backoff longer than the request's deadline leaves, is not waited
for: the error goes up at once, so the next deployment or model is tried instead."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from taskroute.calling.deadline import Deadline
from taskroute.exceptions import (
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.records import AttemptRole

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, UpstreamStatus):
        return exc.status >= 500 or exc.status in (408, 409, 429)
    return isinstance(exc, UpstreamTimeout | UpstreamConnectionError | MalformedResponse)


def counts_against_deployment(exc: BaseException) -> bool:
    """Does this failure say the deployment is unhealthy (for its circuit breaker)?"""
    if isinstance(exc, UpstreamStatus) and exc.status in (401, 403):
        return True  # a bad key or a blocked account: the deployment cannot serve anyone
    return is_retryable(exc)


@dataclass(slots=True)
class RetryPolicy:
    retries: int = 1
    first_s: float = 0.25
    cap_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, retry: int, exc: BaseException) -> float:
        """Seconds to wait before retry number `retry` (0-based): Retry-After when the
        provider sent one, else first × 2^retry with 'equal jitter'; both capped."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.cap_s)
        ceiling = min(self.cap_s, math.ldexp(self.first_s, retry))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def worth_waiting(self, delay: float, exc: BaseException, deadline: Deadline | None) -> bool:
        """Is a retry after `delay` better than moving on? Not when the provider asks for
        longer than the cap, nor when the wait would end past the deadline."""
        if isinstance(exc, RateLimited) and (exc.retry_after or 0.0) > self.cap_s:
            return False
        return deadline is None or delay < deadline.left()

    async def run(
        self, call: Callable[[AttemptRole], Awaitable[T]], role: AttemptRole,
        *, may_retry: Callable[[], bool] = lambda: True, deadline: Deadline | None = None,
    ) -> T:
        """`call(role)` until it succeeds, fails for good, or the retries (or the time) are
        spent. `may_retry` is asked before each retry (the circuit breaker's say)."""
        retry = 0
        while True:
            try:
                return await call(role if retry == 0 else "retry")
            except UpstreamError as exc:
                if retry >= self.retries or not is_retryable(exc) or not may_retry():
                    raise
                delay = self.delay(retry, exc)
                if not self.worth_waiting(delay, exc, deadline):
                    raise
                await self.sleep(delay)
                retry += 1
