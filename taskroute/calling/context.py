"""One request's call context: what every layer appends its attempts to.

Every call of a model is a `Call` (`taskroute.calling.attempt`) opened here, and ends as
exactly one `Attempt` here — answered, rejected by a gate, failed, cancelled (a race's loser, a
hedge's loser, an answer never used) or skipped (its circuit was open) — with its cost from the
policy's prices and the usage the provider reported (estimated from the text when the provider
reported none). `settle()` ends whatever is still open when the request finishes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from taskroute.calling.attempt import UNUSED, Call
from taskroute.calling.breaker import CircuitBreaker
from taskroute.calling.deadline import Deadline
from taskroute.decision import Decision
from taskroute.gates.confidence import Confidence
from taskroute.policy.model import Policy, Price
from taskroute.providers.base import Timeouts
from taskroute.quality.budgets import Hold
from taskroute.records import Attempt, AttemptRole, AttemptStatus, GateVerdict, RequestContext
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk
from taskroute.tracing.base import RequestSpan


@dataclass(slots=True)
class Answer:
    """A model's answer before the gates have judged it, with the call that produced it."""

    response: ChatResponse
    call: Call
    chunks: list[StreamChunk] | None = None   # the stream as received, when it was streamed

    @property
    def model(self) -> str:
        return self.call.model

    @property
    def deployment(self) -> str:
        return self.call.deployment

    @property
    def started_at(self) -> float:
        return self.call.started_at

    @property
    def first_token_s(self) -> float | None:
        return self.call.first_token_s


@dataclass(slots=True)
class CallContext:
    request: ChatRequest
    decision: Decision
    policy: Policy
    origin: RequestContext = field(default_factory=RequestContext)   # who asked, for the log
    attempts: list[Attempt] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    hold: Hold | None = None        # the budget reservation admitting it, until it settles
    # the request as providers are sent it, when it differs (logprobs asked for confidence)
    upstream: ChatRequest | None = None
    confidence: Confidence | None = None    # the race's judgement of the cheap answer
    deadline: Deadline | None = None        # when the whole answer must be in (None: no limit)
    span: RequestSpan | None = None         # its trace span (None: not traced)

    @property
    def outgoing(self) -> ChatRequest:
        """What providers are sent: the caller's request, or its copy asking for logprobs."""
        return self.upstream if self.upstream is not None else self.request

    def timeouts(self, base: Timeouts) -> Timeouts:
        """One call's timeouts: `base`, shrunk to the time the deadline leaves."""
        return base if self.deadline is None else self.deadline.timeouts(base)

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.deadline.passed()

    @property
    def input_estimate(self) -> int:
        return self.decision.signals.input_tokens

    def price(self, model: str, deployment: str) -> Price:
        spec = self.policy.models.get(deployment) or self.policy.models[model]
        return spec.price

    def begin(
        self, model: str, deployment: str, role: AttemptRole,
        breaker: CircuitBreaker | None = None,
    ) -> Call:
        """A call of `deployment` starting now; it records itself when it ends."""
        call = Call(self, model, deployment, role, breaker,
                    None if self.span is None else self.span.attempt(model, deployment, role))
        self.calls.append(call)
        return call

    def settle(self) -> None:
        """End every call no layer ended (an answer that was never used): the request is
        finishing, and each call that reached a provider is paid for."""
        for call in self.calls:
            if call.recorded is None:
                if call.response is not None:
                    call.answered("cancelled", error=UNUSED)
                else:
                    call.failed(asyncio.CancelledError())
        self.calls.clear()

    def record(
        self, *, model: str, deployment: str, role: AttemptRole, status: AttemptStatus,
        started_at: float, latency_s: float, first_token_s: float | None = None,
        input_tokens: int | None = None, output_tokens: int = 0,
        verdicts: tuple[GateVerdict, ...] = (), error: str | None = None,
        cached_input_tokens: int = 0, cache_write_tokens: int = 0, reasoning_tokens: int = 0,
    ) -> Attempt:
        """Append one attempt (only `Call` calls this). Without reported input tokens the
        request's estimate is used for any call that reached the provider (a cancelled call
        still pays for its input). Cached and cache-written input is priced at its own rate."""
        if input_tokens is None:
            input_tokens = 0 if status == "skipped" else self.input_estimate
        cost = self.price(model, deployment).cost(
            input_tokens, output_tokens, cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens)
        attempt = Attempt(
            model=model, deployment=deployment, role=role, status=status,
            started_at=started_at, latency_s=round(latency_s, 6),
            first_token_s=None if first_token_s is None else round(first_token_s, 6),
            input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=round(cost, 10),
            verdicts=verdicts, error=error, cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens, reasoning_tokens=reasoning_tokens,
        )
        self.attempts.append(attempt)
        return attempt

    def record_answer(
        self, answer: Answer, status: AttemptStatus, verdicts: tuple[GateVerdict, ...] = ()
    ) -> Attempt | None:
        return answer.call.answered(status, verdicts)


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
