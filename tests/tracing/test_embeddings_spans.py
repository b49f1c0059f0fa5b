"""An embeddings request through the real gateway is traced like a chat request: a request
span under the client's trace with the call's span under it (GenAI's `embeddings`
operation), exported over OTLP/HTTP to a loopback receiver; the upstream is sent the call's
trace context; a failing upstream gives error spans; no input, vector or key on a span."""

from __future__ import annotations

import dataclasses

import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from taskroute.tracing.otel import OtelTracing
from tests.gateway.conftest import StartGateway
from tests.tracing.common import CLIENT_SPAN, CLIENT_TRACE, TRACEPARENT
from tests.tracing.exporting import children, exported, receiver, tracing
from tests.tracing.otlp_receiver import OtlpReceiver

__all__ = ["receiver", "tracing"]  # the fixtures

TEXTS = ["the cat sat on the tracing mat", "a second text to embed"]
SECRET = "sk-secret-client-key"


def client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=SECRET, max_retries=0, timeout=20)


async def test_an_embeddings_request_is_a_request_span_with_its_call_under_it(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(  # content logged: still none on an embeddings span
        tracing=tracing, edit_policy=lambda p: dataclasses.replace(p, log_content=True))
    async with client(gateway.base_url) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=TEXTS,
            extra_headers={"traceparent": TRACEPARENT})
    result = raw.parse()
    spans = await exported(tracing, receiver, CLIENT_TRACE, 2)
    (root,) = [s for s in spans if s.parent_id == CLIENT_SPAN]
    (call,) = children(spans, root)
    assert len(spans) == 2
    assert root.name == "embeddings text-embedding-3-small" and root.kind == 2  # SERVER
    a = root.attributes
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.request.model"] == "text-embedding-3-small"
    assert a["gen_ai.response.model"] == "openai/text-embedding-3-small"
    assert a["taskroute.request_id"] == raw.headers["x-taskroute-request-id"]
    assert a["taskroute.api"] == "embeddings"
    assert (a["taskroute.task_class"], a["taskroute.tier"]) == ("embedding", "embedding")
    assert a["taskroute.model"] == "openai/text-embedding-3-small"
    assert a["taskroute.routed"] is False and a["taskroute.status"] == "ok"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == 0
    assert a["taskroute.cost_usd"] == pytest.approx(float(raw.headers["x-taskroute-cost-usd"]))
    assert a["taskroute.cost_usd"] > 0 and root.status_code == 0
    assert call.name == "embeddings text-embedding-3-small" and call.kind == 3  # CLIENT
    c_ = call.attributes
    assert c_["gen_ai.operation.name"] == "embeddings"
    assert c_["gen_ai.provider.name"] == "openai"
    assert c_["taskroute.deployment"] == "openai/text-embedding-3-small"
    assert c_["taskroute.attempt.role"] == "first"
    assert c_["taskroute.attempt.status"] == "ok" and call.status_code == 0
    assert c_["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert c_["taskroute.cost_usd"] == a["taskroute.cost_usd"]
    sent = gateway.upstream.last_headers["text-embedding-3-small"]
    assert sent["traceparent"] == f"00-{CLIENT_TRACE}-{call.span_id}-01"
    text = repr([s.attributes for s in spans])
    assert "gen_ai.input.messages" not in text and "tracing mat" not in text
    assert SECRET not in text and "Authorization" not in text


async def test_a_failing_embeddings_upstream_gives_error_spans(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing)
    gateway.upstream.fail("text-embedding-3-small", 500)
    async with client(gateway.base_url) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.embeddings.create(model="auto", input="hello",
                                      extra_headers={"traceparent": TRACEPARENT})
    assert caught.value.status_code == 502
    spans = await exported(tracing, receiver, CLIENT_TRACE, 2)
    (root,) = [s for s in spans if s.parent_id == CLIENT_SPAN]
    (call,) = children(spans, root)
    assert root.status_code == call.status_code == 2  # ERROR
    assert root.attributes["taskroute.status"] == "error"
    assert root.attributes["error.type"] == "UpstreamStatus"
    assert "500" in root.attributes["taskroute.error"]
    assert root.attributes["taskroute.cost_usd"] == 0
    assert call.attributes["taskroute.attempt.status"] == "error"
    assert call.attributes["error.type"] == "UpstreamStatus"
    assert "500" in call.attributes["taskroute.error"]
    assert SECRET not in repr([s.attributes for s in spans])
