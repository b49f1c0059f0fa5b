"""The OpenAI-compatible adapter against the simulated upstream, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk

from .conftest import KEY

FAST = Timeouts(connect=2, first_token=5, total=10)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}


def ask(text: str = "what is the capital of France", **fields: Any) -> ChatRequest:
    return ChatRequest.from_prompt(text, **fields)


async def collect(provider: OpenAIProvider, request: ChatRequest,
                  timeouts: Timeouts = FAST) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request, model="m", timeouts=timeouts)]


async def test_completes_with_text_and_usage(openai: OpenAIProvider) -> None:
    response = await openai.complete(ask(), model="m", timeouts=FAST)
    assert response.text == "m answers: what is the capital of France."
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens)


async def test_sends_key_headers_upstream_name_and_passes_unknown_fields(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    request = ask(model="sim-openai/m", seed=7, top_p=0.5, metadata={"user_tier": "pro"})
    await openai.complete(request, model="m", timeouts=FAST)
    body, headers = upstream.last_body["m"], upstream.last_headers["m"]
    assert body["model"] == "m"
    assert body["seed"] == 7
    assert body["top_p"] == 0.5
    assert "metadata" not in body  # taskroute's routing metadata stays home
    assert "stream" not in body
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["X-Team"] == "routing"


async def test_streams_chunks_with_usage_in_the_last_one(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    chunks = await collect(openai, ask())
    assert upstream.last_body["m"]["stream_options"] == {"include_usage": True}
    text = "".join(c.delta_text for c in chunks)
    assert text == "m answers: what is the capital of France."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


async def test_returns_tool_calls(openai: OpenAIProvider) -> None:
    request = ask("weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")
    response = await openai.complete(request, model="m", timeouts=FAST)
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls is not None
    call = response.tool_calls[0]
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])


async def test_streams_tool_call_arguments_in_pieces(openai: OpenAIProvider) -> None:
    chunks = await collect(openai, ask("weather in Paris?", tools=[WEATHER_TOOL]))
    pieces = [tc["function"].get("arguments", "")
              for c in chunks for choice in c.data["choices"]
              for tc in choice["delta"].get("tool_calls", [])]
    assert json.loads("".join(pieces))["city"]
    assert chunks[-2].finish_reason == "tool_calls"


async def test_answers_json_valid_against_the_requested_schema(openai: OpenAIProvider) -> None:
    schema = {"type": "object", "required": ["name", "age", "tags"],
              "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18},
                             "tags": {"type": "array", "items": {"enum": ["a", "b"]}}}}
    request = ask("extract the person", response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    response = await openai.complete(request, model="m", timeouts=FAST)
    jsonschema.validate(json.loads(response.text), schema)


async def test_passes_logprobs_through(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.return_logprobs("m", confidence=0.5)
    response = await openai.complete(ask(logprobs=True), model="m", timeouts=FAST)
    assert upstream.last_body["m"]["logprobs"] is True
    assert response.logprobs is not None
    entries = response.logprobs["content"]
    assert entries and all(e["logprob"] == pytest.approx(-0.6931, abs=1e-3) for e in entries)


async def test_streamed_chunks_carry_logprobs(openai: OpenAIProvider) -> None:
    chunks = await collect(openai, ask(logprobs=True))
    carried = [c for c in chunks if c.data["choices"] and c.data["choices"][0].get("logprobs")]
    assert len(carried) == 8


async def test_a_provider_without_a_key_variable_sends_no_auth() -> None:
    from taskroute.policy.model import ProviderSpec

    async with SimulatedUpstream() as upstream:
        provider = OpenAIProvider(ProviderSpec("local", "openai", upstream.base_url))
        try:
            await provider.complete(ask(), model="m", timeouts=FAST)
        finally:
            await provider.aclose()
        assert "Authorization" not in upstream.last_headers["m"]


async def test_reuses_one_pooled_connection(openai: OpenAIProvider) -> None:
    for _ in range(5):
        await openai.complete(ask(), model="m", timeouts=FAST)
    session = openai._http.session()
    assert session.connector is not None
    assert session.connector.limit == 256


async def test_slow_profile_streams_first_token_before_the_rest() -> None:
    profile = ModelProfile(first_token_s=0.05, tokens_per_s=200)
    async with SimulatedUpstream({"m": profile}) as upstream:
        from taskroute.policy.model import ProviderSpec

        provider = OpenAIProvider(ProviderSpec("sim", "openai", upstream.base_url))
        try:
            chunks = await collect(provider, ask())
        finally:
            await provider.aclose()
    assert "".join(c.delta_text for c in chunks).startswith("m answers")
