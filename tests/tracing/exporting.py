"""What the tests of exported traces share (OpenTelemetry installed): a loopback OTLP/HTTP
receiver, a tracer exporting to it, and the spans of one trace once they have arrived. A test
module imports the fixtures by name, after `pytest.importorskip("opentelemetry.sdk")`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from taskroute.tracing.otel import OtelTracing
from tests.tracing.otlp_receiver import OtlpReceiver, Span


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def tracing(receiver: OtlpReceiver) -> Iterator[OtelTracing]:
    traced = OtelTracing.exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                                    "OTEL_SERVICE_NAME": "taskroute-test"})
    yield traced
    traced.shutdown()


async def exported(tracing: OtelTracing, receiver: OtlpReceiver, trace_id: str,
                   count: int) -> list[Span]:
    """The trace's spans once `count` have arrived (flushed off the loop: it blocks)."""
    for _ in range(50):
        assert await asyncio.to_thread(tracing.force_flush, 10_000)
        spans = receiver.received.in_trace(trace_id)
        if len(spans) >= count:
            return spans
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(receiver.received.in_trace(trace_id))} spans, not {count}")


def children(spans: list[Span], parent: Span) -> list[Span]:
    """`parent`'s child spans, in the order they started."""
    return sorted((s for s in spans if s.parent_id == parent.span_id), key=lambda s: s.start_ns)
