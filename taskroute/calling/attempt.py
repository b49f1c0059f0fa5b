"""`Call`: one call of one deployment, from its start until it is recorded — the one place an
`Attempt` is made.

Every layer that calls a model opens a `Call` through its request's `CallContext` and ends it
one way: `answered` by what the gates said of it, `failed` with the error (or cancellation)
that ended it, or `skipped` before it started. Ending twice records once. Whatever no layer
ended — an answer that arrived as its hedge or race partner won, a call whose task was torn
down — is ended by `CallContext.settle()` when the request finishes, as `cancelled`, so every
call that reached a provider is in the record, paid for, exactly once.

A call's health reaches its deployment's circuit breaker here too, when it fails; and a traced
call's span (`taskroute.tracing`) ends with its attempt.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from taskroute.calling.assemble import Tally
from taskroute.calling.breaker import CircuitBreaker
from taskroute.calling.retry import counts_against_deployment
from taskroute.exceptions import ConfigError, UpstreamStatus
from taskroute.records import Attempt, AttemptRole, AttemptStatus, GateVerdict, Tokens
from taskroute.response import ChatResponse
from taskroute.signals import estimate_tokens
from taskroute.tracing.base import AttemptSpan

UNUSED = "cancelled: the request ended before this answer was judged or used"


class Ledger(Protocol):
    """Where a call's attempt goes: its request's `CallContext`."""

    @property
    def input_estimate(self) -> int: ...

    def record(
        self, *, model: str, deployment: str, role: AttemptRole, status: AttemptStatus,
        started_at: float, latency_s: float, first_token_s: float | None = None,
        input_tokens: int | None = None, output_tokens: int = 0,
        verdicts: tuple[GateVerdict, ...] = (), error: str | None = None,
        cached_input_tokens: int = 0, cache_write_tokens: int = 0, reasoning_tokens: int = 0,
    ) -> Attempt: ...


class Call:
    __slots__ = ("_ctx", "breaker", "deployment", "first_token_s", "latency_s", "model",
                 "recorded", "response", "role", "span", "started", "started_at")

    def __init__(
        self, ctx: Ledger, model: str, deployment: str, role: AttemptRole,
        breaker: CircuitBreaker | None = None, span: AttemptSpan | None = None,
    ) -> None:
        self._ctx = ctx
        self.span = span                        # its trace span (None: not traced)
        self.model, self.deployment, self.role = model, deployment, role
        self.breaker = breaker
        self.started_at = time.time()           # unix seconds
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self.latency_s: float | None = None     # fixed once the whole answer is in
        self.response: ChatResponse | None = None
        self.recorded: Attempt | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def arrived(self, response: ChatResponse | None = None) -> None:
        """The whole answer is in (it waits for its gates, or for the race to settle)."""
        self.latency_s = self.elapsed()
        if self.first_token_s is None:
            self.first_token_s = self.latency_s
        self.response = response

    def answered(
        self, status: AttemptStatus, verdicts: tuple[GateVerdict, ...] = (), *,
        tally: Tally | None = None, error: str | None = None,
    ) -> Attempt | None:
        """Record the answer with what the gates said of it (`ok`, `rejected`, or `cancelled`
        when it was never used). Its tokens are the provider's usage, else estimated."""
        if self.recorded is not None:
            return None
        if tally is not None:
            tokens = tally.tokens(self._ctx.input_estimate)
        elif self.response is not None:
            tokens = usage_tokens(self.response, self._ctx.input_estimate)
        else:
            tokens = Tokens(self._ctx.input_estimate)
        return self._record(status, tokens=tokens, verdicts=verdicts, error=error)

    def failed(self, exc: BaseException, tally: Tally | None = None) -> Attempt | None:
        """Record an error or a cancellation, and tell the deployment's breaker what it says
        of the deployment's health. `tally`: what a stream had sent before it broke."""
        if self.recorded is not None:
            return None
        cancelled = isinstance(exc, asyncio.CancelledError)
        if self.breaker is not None:
            if cancelled or isinstance(exc, ConfigError):
                self.breaker.release()
            elif counts_against_deployment(exc):
                self.breaker.failure(f"{type(exc).__name__}: {exc}")
            elif tally is None:
                self.breaker.success()  # it answered, if only to say no: the deployment is up
        tokens = tally.tokens(self._ctx.input_estimate) if tally is not None else None
        if tokens is None and not_billed(exc):
            tokens = Tokens()
        return self._record(
            "cancelled" if cancelled else "error",
            tokens=tokens,
            error="cancelled" if cancelled else f"{type(exc).__name__}: {exc}",
        )

    def skipped(self, why: str) -> Attempt | None:
        """Never started (its circuit is open): recorded at no cost."""
        if self.recorded is not None:
            return None
        return self._record("skipped", tokens=Tokens(), error=why, latency_s=0.0)

    def _record(
        self, status: AttemptStatus, *, tokens: Tokens | None,
        verdicts: tuple[GateVerdict, ...] = (), error: str | None = None,
        latency_s: float | None = None,
    ) -> Attempt:
        """`tokens` None: none reported (the ledger counts the request's input estimate)."""
        if latency_s is None:
            latency_s = self.latency_s if self.latency_s is not None else self.elapsed()
        counted = tokens or Tokens()
        self.recorded = self._ctx.record(
            model=self.model, deployment=self.deployment, role=self.role, status=status,
            started_at=self.started_at, latency_s=latency_s, first_token_s=self.first_token_s,
            input_tokens=None if tokens is None else tokens.input, output_tokens=counted.output,
            verdicts=verdicts, error=error, cached_input_tokens=counted.cached_input,
            cache_write_tokens=counted.cache_write, reasoning_tokens=counted.reasoning,
        )
        if self.span is not None:
            self.span.end(self.recorded, self.response)
        return self.recorded



def not_billed(exc: BaseException) -> bool:
    """Did the provider refuse the call outright — a 5xx or a 429 — which providers do not
    bill? Such an attempt costs nothing. A call that failed any other way after it was sent (a
    timeout, a dropped connection, a cancellation) keeps the input estimate: the provider may
    have read, and billed, the prompt before the failure."""
    return isinstance(exc, UpstreamStatus) and (exc.status >= 500 or exc.status == 429)


def usage_tokens(response: ChatResponse, input_estimate: int) -> Tokens:
    """The answer's tokens by kind: as reported, else estimated from the text."""
    usage = response.usage
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        return Tokens.of(usage)
    output = estimate_tokens(response.text)
    for call in response.tool_calls or []:
        output += estimate_tokens(str(call.get("function", call)))
    return Tokens(input_estimate, output)
