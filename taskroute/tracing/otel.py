"""`OtelTracing`: the tracing seam on OpenTelemetry (the `otel` extra; imported only when
tracing is on).

A request's span is a SERVER span under the client's `traceparent` (INTERNAL for a library
call), named `<operation> <model asked for>` (`chat`, or `embeddings`); each attempt is a
CLIENT span under it, named `<operation> <upstream model>`, timed as the call was (its end is
the answer's arrival, not when a gate or the race got round to it), and its context is what
the upstream is sent. A judge's call grading an attempt's answer is an INTERNAL span under
that attempt, `judge <judge model>` (so it starts after the attempt's end: the attempt is timed
as the call was), with the judge's own attempts as CLIENT spans under it. Spans are exported in
batches by OpenTelemetry's own processor, off the event loop."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import taskroute.tracing.attributes as attributes
from taskroute.decision import Decision
from taskroute.policy.model import Policy
from taskroute.records import (
    Attempt,
    AttemptRole,
    GateVerdict,
    RequestContext,
    RouteRecord,
)
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse
from taskroute.tracing.propagation import TRACEPARENT, TRACESTATE

log = logging.getLogger("taskroute.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
SCOPE = "taskroute"


class OtelTracing:
    def __init__(self, tracer: trace.Tracer, provider: TracerProvider | None = None) -> None:
        """`provider`: the one this object built and shuts down (None: the caller's)."""
        self._tracer = tracer
        self._provider = provider

    @classmethod
    def exporting(cls, env: Mapping[str, str]) -> OtelTracing:
        """A private tracer provider exporting as the environment says: OTLP over HTTP
        (protobuf) to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
        `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else localhost:4318; or to stdout
        (`OTEL_TRACES_EXPORTER=console`). The process's global provider is left alone."""
        name = env.get("OTEL_SERVICE_NAME", "").strip() or "taskroute"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        for exporter in _exporters(env):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider.get_tracer(SCOPE), provider)

    @classmethod
    def using_global(cls) -> OtelTracing:
        """Spans through the application's own OpenTelemetry setup (its global provider)."""
        return cls(trace.get_tracer(SCOPE))

    def request(self, request: ChatRequest, decision: Decision, origin: RequestContext,
                *, policy: Policy, racing: bool, operation: str = attributes.OPERATION
                ) -> _RequestSpan:
        parent = None
        if origin.traceparent is not None:
            carrier = {TRACEPARENT: origin.traceparent}
            if origin.tracestate:
                carrier[TRACESTATE] = origin.tracestate
            parent = _PROPAGATOR.extract(carrier)
        span = self._tracer.start_span(
            f"{operation} {request.model}", context=parent,
            kind=SpanKind.INTERNAL if origin.api == "library" else SpanKind.SERVER,
            attributes=attributes.request_start(request, decision, origin, operation))
        return _RequestSpan(self._tracer, span, request, policy, origin, racing=racing,
                            operation=operation)

    def force_flush(self, timeout_ms: int = 30_000) -> bool:
        """Export every finished span now (blocking)."""
        return self._provider.force_flush(timeout_ms) if self._provider is not None else True

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


class _RequestSpan:
    __slots__ = ("_context", "_operation", "_origin", "_policy", "_racing", "_request", "_span",
                 "_tracer")

    def __init__(self, tracer: trace.Tracer, span: trace.Span, request: ChatRequest,
                 policy: Policy, origin: RequestContext, *, racing: bool = False,
                 operation: str = attributes.OPERATION) -> None:
        self._tracer, self._span, self._request = tracer, span, request
        self._policy, self._origin, self._racing = policy, origin, racing
        self._operation = operation
        self._context = trace.set_span_in_context(span)

    def attempt(self, model: str, deployment: str, role: AttemptRole) -> _AttemptSpan:
        provider = self._policy.providers.get(deployment.partition("/")[0])
        attrs = attributes.attempt_start(provider.api if provider else "", model, deployment,
                                         role, racing=self._racing, operation=self._operation)
        span = self._tracer.start_span(
            f"{self._operation} {attrs['gen_ai.request.model']}", context=self._context,
            kind=SpanKind.CLIENT, attributes=attrs)
        return _AttemptSpan(span, self)

    def judge(self, parent: trace.Span, request: ChatRequest, decision: Decision,
              gate: str) -> _JudgeSpan:
        """The span of a judge's call grading the answer of `parent`, one of this request's
        attempts."""
        span = self._tracer.start_span(
            f"{attributes.JUDGE} {decision.model}", context=trace.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attributes.judge_start(request, decision, self._origin, gate))
        return _JudgeSpan(self._tracer, span, request, self._policy, self._origin)

    def end(self, record: RouteRecord, *, answer: str | None,
            error: BaseException | None) -> None:
        span = self._span
        if not span.is_recording():  # sampled out: nothing to describe
            span.end()
            return
        # an embeddings request's input is bulk, and not a conversation: never on its span
        log_content = self._policy.log_content and self._operation != attributes.EMBEDDINGS
        span.set_attributes(attributes.request_end(record, self._request, answer, log_content))
        if record.status == "error":
            if error is not None:
                span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, record.error or ""))
        span.end()


class _JudgeSpan(_RequestSpan):
    """A judge's call: a request span of its own (its attempts under it) with the verdict."""

    __slots__ = ()

    def judged(self, verdict: GateVerdict | None) -> None:
        if self._span.is_recording():
            self._span.set_attributes(attributes.judged(verdict))


class _AttemptSpan:
    __slots__ = ("_headers", "_owner", "_span")

    def __init__(self, span: trace.Span, owner: _RequestSpan) -> None:
        self._span, self._owner = span, owner
        self._headers: dict[str, str] | None = None

    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = {}
            _PROPAGATOR.inject(self._headers, context=trace.set_span_in_context(self._span))
        return self._headers

    def judge(self, request: ChatRequest, decision: Decision, gate: str) -> _JudgeSpan:
        return self._owner.judge(self._span, request, decision, gate)

    def end(self, attempt: Attempt, response: ChatResponse | None) -> None:
        span = self._span
        if not span.is_recording():
            span.end()
            return
        span.set_attributes(attributes.attempt_end(attempt, response))
        if attempt.status == "error":
            span.set_status(Status(StatusCode.ERROR, attempt.error or ""))
        start: Any = getattr(span, "start_time", None)  # an SDK span's, in ns
        span.end(None if start is None else start + int(attempt.latency_s * 1e9))


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    names = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").lower().split(",")
             if n.strip()} or {"otlp"}
    found: list[SpanExporter] = []
    if "console" in names:
        found.append(ConsoleSpanExporter())
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
        if protocol != "http/protobuf":
            log.warning("OTLP protocol %r is not supported; exporting traces over "
                        "http/protobuf", protocol)
        found.append(OTLPSpanExporter(endpoint=_endpoint(env)))
    return found


def _endpoint(env: Mapping[str, str]) -> str:
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    return base.rstrip("/") + "/v1/traces"
