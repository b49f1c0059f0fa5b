"""One request's call context: what every layer appends its attempts to.

Every call of a model ends as exactly one `Attempt` here — answered, rejected by a gate,
failed, cancelled (a race's loser, a hedge's loser) or skipped (its circuit was open) — with
its cost from the policy's prices and the usage the provider reported (estimated from the text
when the provider reported none).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from taskroute.decision import Decision
from taskroute.policy.model import Policy, Price
from taskroute.records import Attempt, AttemptRole, AttemptStatus, GateVerdict, RequestContext
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk
from taskroute.signals import estimate_tokens


@dataclass(slots=True)
class Answer:
    """A model's answer before the gates have judged it."""

    response: ChatResponse
    model: str
    deployment: str
    role: AttemptRole
    started_at: float          # unix seconds
    latency_s: float
    first_token_s: float | None
    chunks: list[StreamChunk] | None = None   # the stream as received, when it was streamed


@dataclass(slots=True)
class CallContext:
    request: ChatRequest
    decision: Decision
    policy: Policy
    origin: RequestContext = field(default_factory=RequestContext)   # who asked, for the log
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def input_estimate(self) -> int:
        return self.decision.signals.input_tokens

    def price(self, model: str, deployment: str) -> Price:
        spec = self.policy.models.get(deployment) or self.policy.models[model]
        return spec.price

    def record(
        self, *, model: str, deployment: str, role: AttemptRole, status: AttemptStatus,
        started_at: float, latency_s: float, first_token_s: float | None = None,
        input_tokens: int | None = None, output_tokens: int = 0,
        verdicts: tuple[GateVerdict, ...] = (), error: str | None = None,
    ) -> Attempt:
        """Append one attempt. Without reported input tokens the request's estimate is used
        for any call that reached the provider (a cancelled call still pays for its input)."""
        if input_tokens is None:
            input_tokens = 0 if status == "skipped" else self.input_estimate
        cost = self.price(model, deployment).cost(input_tokens, output_tokens)
        attempt = Attempt(
            model=model, deployment=deployment, role=role, status=status,
            started_at=started_at, latency_s=round(latency_s, 6),
            first_token_s=None if first_token_s is None else round(first_token_s, 6),
            input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=round(cost, 10),
            verdicts=verdicts, error=error,
        )
        self.attempts.append(attempt)
        return attempt

    def record_answer(
        self, answer: Answer, status: AttemptStatus, verdicts: tuple[GateVerdict, ...] = ()
    ) -> Attempt:
        input_tokens, output_tokens = usage_tokens(answer.response, self.input_estimate)
        return self.record(
            model=answer.model, deployment=answer.deployment, role=answer.role, status=status,
            started_at=answer.started_at, latency_s=answer.latency_s,
            first_token_s=answer.first_token_s, input_tokens=input_tokens,
            output_tokens=output_tokens, verdicts=verdicts,
        )

    def record_skip(self, model: str, deployment: str, role: AttemptRole, why: str) -> None:
        self.record(model=model, deployment=deployment, role=role, status="skipped",
                    started_at=time.time(), latency_s=0.0, error=why)


def usage_tokens(response: ChatResponse, input_estimate: int) -> tuple[int, int]:
    """(input, output) tokens: as reported, else estimated from the text."""
    usage = response.usage
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        return usage.prompt_tokens, usage.completion_tokens
    output = estimate_tokens(response.text)
    for call in response.tool_calls or []:
        output += estimate_tokens(str(call.get("function", call)))
    return input_estimate, output


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
