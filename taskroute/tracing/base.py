"""The tracing seam: what the call path asks of a tracer, with no OpenTelemetry in it.

A `Tracing` opens a `RequestSpan` when a request begins (its parent the client's
`traceparent`, when it sent one); each call of a deployment opens an `AttemptSpan` under it,
whose `headers()` go to that upstream so its own spans join the trace. Both end with what the
call path recorded: the `Attempt`, and the `RouteRecord`. A gate that calls a model to grade
an attempt's answer (the judge) opens a `JudgeSpan` under that attempt: a request span of its
own (its calls are attempts under it) that also carries the gate's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from taskroute.decision import Decision
    from taskroute.policy.model import Policy
    from taskroute.records import Attempt, AttemptRole, GateVerdict, RequestContext, RouteRecord
    from taskroute.request import ChatRequest
    from taskroute.response import ChatResponse


class AttemptSpan(Protocol):
    def headers(self) -> Mapping[str, str]:
        """The W3C trace headers (`traceparent`, `tracestate`) for this call's upstream."""
        ...

    def end(self, attempt: Attempt, response: ChatResponse | None) -> None:
        """The call ended as `attempt` (`response`: its answer, when it was read whole)."""
        ...

    def judge(self, request: ChatRequest, decision: Decision, gate: str) -> JudgeSpan:
        """The span of a model call `gate` makes to grade this call's answer: `decision`
        names the judge's model, `request` is what it is asked."""
        ...


class RequestSpan(Protocol):
    def attempt(self, model: str, deployment: str, role: AttemptRole) -> AttemptSpan: ...

    def end(self, record: RouteRecord, *, answer: str | None,
            error: BaseException | None) -> None: ...


class JudgeSpan(RequestSpan, Protocol):
    def judged(self, verdict: GateVerdict | None) -> None:
        """The gate's verdict on the answer it graded (None: it gave none, cancelled); set
        before `end`."""
        ...


class Tracing(Protocol):
    def request(self, request: ChatRequest, decision: Decision, origin: RequestContext,
                *, policy: Policy, racing: bool, operation: str = "chat") -> RequestSpan:
        """The span of a request starting now (`racing`: its task races two models;
        `operation`: the GenAI operation, `chat` or `embeddings`)."""
        ...

    def shutdown(self) -> None:
        """Export what is still buffered and stop (blocking: call it off the event loop)."""
        ...
