"""Tracing: one span per request (chat or embeddings) and one child span per attempt, a
judge's call a span under the attempt it grades (`judging`), exported over OTLP.

Tracing is a seam (`taskroute.tracing.base.Tracing`), off unless the `otel` extra is installed
and switched on (`from_environment`: the standard `OTEL_*` variables, or `TASKROUTE_TRACING`).
The core never imports OpenTelemetry: with tracing off the call path holds `None` where a span
would be, and a client's W3C `traceparent` is still handed on to the upstream unchanged
(`propagation.PassThrough`)."""

from taskroute.tracing.base import AttemptSpan, RequestSpan, Tracing
from taskroute.tracing.setup import enabled, from_environment

__all__ = ["AttemptSpan", "RequestSpan", "Tracing", "enabled", "from_environment"]
