"""Traces through a real gateway: the spans exported over OTLP/HTTP to a loopback receiver
(protobuf decoded with opentelemetry-proto), their tree under the client's trace, their
GenAI and taskroute attributes, and the trace context each upstream call received."""

from __future__ import annotations

import dataclasses

import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

from taskroute.demo.policy import simulated_policy
from taskroute.policy.loader import load_default_policy
from taskroute.policy.model import Policy, RaceSpec, RefusalHold
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from taskroute.tracing.otel import OtelTracing
from tests.gateway.conftest import StartGateway
from tests.tracing.common import CLIENT_SPAN, CLIENT_TRACE, PROMPT, TRACEPARENT, ask
from tests.tracing.exporting import exported, receiver, tracing
from tests.tracing.otlp_receiver import OtlpReceiver, Span

__all__ = ["receiver", "tracing"]  # the fixtures


def _root(spans: list[Span]) -> tuple[Span, list[Span]]:
    (root,) = [s for s in spans if s.parent_id == CLIENT_SPAN]
    return root, sorted((s for s in spans if s is not root), key=lambda s: s.start_ns)


async def test_a_failover_is_one_request_span_with_a_child_span_per_attempt(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing)
    gateway.upstream.fail("gpt-4.1-mini", 503)  # first try and its retry fail: failover
    await ask(gateway, "openai/gpt-4.1-mini", traceparent=TRACEPARENT,
              tracestate="vendor=opaque")
    root, attempts = _root(await exported(tracing, receiver, CLIENT_TRACE, 4))
    assert root.service == "taskroute-test"
    assert root.name == "chat openai/gpt-4.1-mini" and root.kind == 2  # SERVER
    assert [a.parent_id for a in attempts] == [root.span_id] * 3
    assert [a.attributes["taskroute.attempt.role"] for a in attempts] == [
        "first", "retry", "failover"]
    assert [a.attributes["taskroute.attempt.status"] for a in attempts] == [
        "error", "error", "ok"]
    assert [a.status_code for a in attempts] == [2, 2, 0]  # ERROR, ERROR, unset
    first, _, failover = attempts
    assert first.name == "chat gpt-4.1-mini" and first.kind == 3  # CLIENT
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["error.type"] == "UpstreamStatus"
    assert failover.attributes["gen_ai.provider.name"] == "anthropic"
    assert failover.attributes["gen_ai.request.model"] == "claude-haiku-4-5"
    assert failover.attributes["gen_ai.usage.output_tokens"] > 0
    assert failover.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "openai/gpt-4.1-mini"
    assert a["gen_ai.response.model"] == "anthropic/claude-haiku-4-5"
    assert a["gen_ai.request.max_tokens"] == 40
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["taskroute.task_source"] in ("default", "rules", "caller", "classifier")
    assert a["taskroute.tier"] == "fast" and a["taskroute.routed"] is False
    assert a["taskroute.reasons"] and a["taskroute.status"] == "ok"
    assert a["taskroute.cost_usd"] > 0
    # each call went out with its own span as parent, in the client's trace
    sent = gateway.upstream.last_headers["claude-haiku-4-5"]
    assert sent["traceparent"] == f"00-{CLIENT_TRACE}-{failover.span_id}-01"
    assert sent["tracestate"] == "vendor=opaque"
    assert gateway.upstream.last_headers["gpt-4.1-mini"]["traceparent"].split("-")[2] == (
        attempts[1].span_id)


def racing_chat(policy: Policy) -> Policy:
    chat = dataclasses.replace(policy.tasks["chat"], race=RaceSpec("openai/gpt-4.1", 0.9))
    return dataclasses.replace(policy, tasks={**policy.tasks, "chat": chat},
                               log_content=True)


async def test_a_race_names_each_side_and_content_only_when_the_policy_logs_it(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=racing_chat)
    gateway.upstream.answer_slowly("gpt-4.1", 0.5)  # the cheap answer wins, the strong one
    answer = await ask(gateway, "taskroute/chat", traceparent=TRACEPARENT)
    root, attempts = _root(await exported(tracing, receiver, CLIENT_TRACE, 3))
    sides = {a.attributes["taskroute.race.role"]: a for a in attempts}
    assert set(sides) == {"cheap", "strong"}
    assert sides["cheap"].attributes["taskroute.attempt.status"] == "ok"
    assert sides["strong"].attributes["taskroute.attempt.status"] == "cancelled"
    assert root.attributes["taskroute.race.winner"] == "cheap"
    assert root.attributes["taskroute.task_class"] == "chat"
    assert "race_confidence:pass" in sides["cheap"].attributes["taskroute.gate_verdicts"]
    assert PROMPT in root.attributes["gen_ai.input.messages"]
    assert answer and answer in root.attributes["gen_ai.output.messages"]


async def test_no_content_and_no_secret_in_spans_by_default(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing)
    answer = await ask(gateway, "auto", traceparent=TRACEPARENT,
                       Authorization="Bearer sk-secret-client-key")
    spans = await exported(tracing, receiver, CLIENT_TRACE, 2)
    text = repr([s.attributes for s in spans])
    assert "gen_ai.input.messages" not in text and "gen_ai.output.messages" not in text
    assert "tracing test" not in text and answer not in text
    assert "sk-secret" not in text and "Authorization" not in text


async def test_a_request_without_traceparent_starts_its_own_trace(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing)
    await ask(gateway, "openai/gpt-4.1-mini", traceparent="00-not-a-valid-parent-01")
    sent = gateway.upstream.last_headers["gpt-4.1-mini"]["traceparent"]
    trace_id, span_id = sent.split("-")[1:3]
    spans = await exported(tracing, receiver, trace_id, 2)
    (root,) = [s for s in spans if s.parent_id == ""]
    (call,) = [s for s in spans if s.parent_id == root.span_id]
    assert call.span_id == span_id


async def test_a_stream_broken_mid_answer_has_its_rescue_as_a_sibling_span(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(  # nothing held back: the 4 words go out, then the drop
        tracing=tracing, edit_policy=lambda p: dataclasses.replace(
            p, calling=dataclasses.replace(p.calling, refusal_hold=RefusalHold(chars=0))))
    gateway.upstream.drop_connection("gpt-4.1-mini", after=4, times=1)
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=20) as client:
        stream = await client.chat.completions.create(
            model="taskroute/chat", messages=[{"role": "user", "content": PROMPT}],
            stream=True, extra_headers={"traceparent": TRACEPARENT})
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text
    root, attempts = _root(await exported(tracing, receiver, CLIENT_TRACE, 3))
    assert root.attributes["taskroute.stream"] is True
    assert root.attributes["taskroute.rescued_by"] == attempts[-1].attributes[
        "taskroute.deployment"]
    assert [(a.attributes["taskroute.attempt.role"], a.attributes["taskroute.attempt.status"])
            for a in attempts] == [("first", "error"), ("rescue", "ok")]
    assert all(a.parent_id == root.span_id for a in attempts)
    assert attempts[0].attributes["gen_ai.usage.output_tokens"] > 0  # what it sent before


async def test_a_hedge_is_a_sibling_span_marked_as_the_hedge(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=lambda p: dataclasses.replace(
        p, calling=dataclasses.replace(p.calling, hedge=True, hedge_min_samples=3)))
    for _ in range(3):   # first-token times: the p95 the hedge waits for
        await ask(gateway, "openai/gpt-4.1-mini")
    gateway.upstream.answer_slowly("gpt-4.1-mini", 2.0, times=1)
    await ask(gateway, "openai/gpt-4.1-mini", traceparent=TRACEPARENT)
    root, attempts = _root(await exported(tracing, receiver, CLIENT_TRACE, 3))
    first, hedge = attempts
    assert first.attributes["taskroute.attempt.status"] == "cancelled"
    assert hedge.attributes["taskroute.race.role"] == "hedge"
    assert hedge.attributes["taskroute.attempt.status"] == "ok"
    assert hedge.attributes["taskroute.deployment"] == root.attributes["gen_ai.response.model"]


async def test_a_library_call_is_an_internal_span_through_a_given_tracer(
    simulated_upstream: SimulatedUpstream,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = Router(simulated_policy(load_default_policy(), simulated_upstream),
                    classifier=False, tracing=OtelTracing(provider.get_tracer("test")))
    try:
        await router.complete({"messages": [{"role": "user", "content": PROMPT}]})
    finally:
        await router.aclose()
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    (call,) = [s for s in spans if s.parent is not None]
    assert root.kind == SpanKind.INTERNAL and call.kind == SpanKind.CLIENT
    assert call.parent is not None and call.parent.span_id == root.context.span_id
    assert root.attributes is not None and root.attributes["taskroute.api"] == "library"


async def test_a_sampled_out_request_is_answered_and_its_upstream_told_not_sampled(
    simulated_upstream: SimulatedUpstream,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = Router(simulated_policy(load_default_policy(), simulated_upstream),
                    classifier=False, tracing=OtelTracing(provider.get_tracer("test")))
    try:
        result = await router.complete({"model": "openai/gpt-4.1-mini",
                                         "messages": [{"role": "user", "content": PROMPT}]})
    finally:
        await router.aclose()
    assert result.response.text and exporter.get_finished_spans() == ()
    flags = simulated_upstream.last_headers["gpt-4.1-mini"]["traceparent"].rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0   # the sampled bit is off
