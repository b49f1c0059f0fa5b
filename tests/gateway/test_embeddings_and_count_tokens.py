"""/v1/embeddings (the openai SDK's `client.embeddings.create`) passed to the policy's embedding
model, logged and priced; /v1/messages/count_tokens (the anthropic SDK's
`client.messages.count_tokens`)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from taskroute.signals import estimate_tokens
from tests.gateway.conftest import RunningGateway


def oai(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="none", max_retries=0, timeout=10)


async def test_embeddings_go_to_the_named_model_and_are_logged_and_priced(
    gateway: RunningGateway,
) -> None:
    async with oai(gateway) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["the cat sat", "on the mat"])
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [64, 64]  # decoded from base64 floats
    assert result.model == "openai/text-embedding-3-small"
    assert result.usage.prompt_tokens > 0
    assert gateway.upstream.requests["text-embedding-3-small"] == 1
    rows = await gateway.log_rows()
    assert [(r["api"], r["model"], r["routed"], r["http_status"]) for r in rows] == [
        ("embeddings", "openai/text-embedding-3-small", 0, 200)]
    expected = result.usage.prompt_tokens * 0.02 / 1_000_000
    assert rows[0]["cost_usd"] == pytest.approx(expected)
    assert float(raw.headers["x-taskroute-cost-usd"]) == pytest.approx(expected)


async def test_the_same_text_embeds_the_same_and_auto_takes_the_first_model(
    gateway: RunningGateway,
) -> None:
    async with oai(gateway) as c:
        one = await c.embeddings.create(model="auto", input="hello", encoding_format="float")
        two = await c.embeddings.create(model="openai/text-embedding-3-small", input="hello")
        large = await c.embeddings.create(model="text-embedding-3-large", input="hello",
                                          dimensions=8)
    assert one.model == "openai/text-embedding-3-small"
    assert one.data[0].embedding == pytest.approx(two.data[0].embedding, abs=1e-6)
    assert len(large.data[0].embedding) == 8


async def test_an_unknown_embedding_model_is_a_404_and_logged_as_refused(
    gateway: RunningGateway,
) -> None:
    async with oai(gateway) as c:
        with pytest.raises(openai.NotFoundError):
            await c.embeddings.create(model="openai/gpt-4.1", input="hello")
        with pytest.raises(openai.BadRequestError):
            await c.embeddings.create(model="auto", input=[])
    refused = await gateway.log_rows("SELECT api, http_status FROM refused")
    assert [tuple(r) for r in refused] == [("embeddings", 404), ("embeddings", 400)]


async def test_an_upstream_failure_is_logged_with_its_route(gateway: RunningGateway) -> None:
    gateway.upstream.fail("text-embedding-3-small", 500)
    async with oai(gateway) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.embeddings.create(model="auto", input="hello")
    assert caught.value.status_code == 502
    rows = await gateway.log_rows()
    assert [(r["api"], r["status"], r["http_status"]) for r in rows] == [
        ("embeddings", "error", 502)]


async def test_count_tokens_answers_anthropics_sdk_with_the_routing_estimate(
    gateway: RunningGateway,
) -> None:
    system = "You are terse."
    text = "How many tokens is this sentence, roughly speaking?"
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="none",
                                        max_retries=0) as c:
        counted = await c.messages.count_tokens(
            model="claude-sonnet-4-5", system=system,
            messages=[{"role": "user", "content": text}])
        with pytest.raises(anthropic.BadRequestError):
            bad: Any = [{"role": "robot", "content": "x"}]
            await c.messages.count_tokens(model="auto", messages=bad)
    assert counted.input_tokens == estimate_tokens(system) + estimate_tokens(text)
    assert await gateway.log_rows() == []  # nothing was called


@pytest.mark.parametrize("dimensions", [0, -3, 2**40, 1.5, "256", True])
async def test_impossible_dimensions_are_a_400_not_a_hang(
    gateway: RunningGateway, dimensions: Any
) -> None:
    """(The fuzzer's find: `dimensions: 2**40` made the stand-in build a vector for ever.)"""
    status, _, raw = await gateway.request("POST", "/v1/embeddings", json={
        "model": "auto", "input": "hello", "dimensions": dimensions})
    assert status == 400, raw
    assert json.loads(raw)["error"]["param"] == "dimensions"
