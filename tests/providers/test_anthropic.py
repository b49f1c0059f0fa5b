"""The Anthropic Messages adapter against the simulated upstream, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from taskroute.exceptions import (
    ConfigError,
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.policy.model import ProviderSpec
from taskroute.providers.anthropic import AnthropicProvider
from taskroute.providers.base import Timeouts
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk

from .conftest import KEY

FAST = Timeouts(connect=2, first_token=5, total=10)
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def ask(text: str = "what is the capital of France", **fields: Any) -> ChatRequest:
    return ChatRequest.from_prompt(text, **fields)


async def collect(provider: AnthropicProvider, request: ChatRequest,
                  timeouts: Timeouts = FAST) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request, model="m", timeouts=timeouts)]


async def test_completes_with_text_usage_and_finish_reason(
    anthropic: AnthropicProvider, upstream: SimulatedUpstream,
) -> None:
    response = await anthropic.complete(ask(system="Be brief."), model="m", timeouts=FAST)
    assert response.text == "m answers: what is the capital of France."
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 8
    body, headers = upstream.last_body["m"], upstream.last_headers["m"]
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is the capital of France"}]}]
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["X-Team"] == "routing"


async def test_max_tokens_truncates_with_finish_reason_length(
    anthropic: AnthropicProvider,
) -> None:
    response = await anthropic.complete(ask(max_tokens=3), model="m", timeouts=FAST)
    assert response.finish_reason == "length"
    assert response.text == "m answers: what "


async def test_streams_openai_shaped_chunks_with_usage_last(
    anthropic: AnthropicProvider,
) -> None:
    chunks = await collect(anthropic, ask())
    assert chunks[0].data["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c.delta_text for c in chunks) == "m answers: what is the capital of France."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 8)
    assert chunks[-1].data["choices"] == []


async def test_tool_use_becomes_tool_calls(
    anthropic: AnthropicProvider, upstream: SimulatedUpstream,
) -> None:
    request = ask("weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required")
    response = await anthropic.complete(request, model="m", timeouts=FAST)
    assert upstream.last_body["m"]["tools"][0]["input_schema"]["properties"] == {
        "city": {"type": "string"}}
    assert upstream.last_body["m"]["tool_choice"] == {"type": "any"}
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls is not None
    call = response.tool_calls[0]
    assert call["id"].startswith("toolu_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"]


async def test_streamed_tool_use_becomes_tool_call_deltas(anthropic: AnthropicProvider) -> None:
    chunks = await collect(anthropic, ask("weather in Paris?", tools=[WEATHER_TOOL]))
    calls = [tc for c in chunks for ch in c.data["choices"]
             for tc in ch["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(c["function"]["arguments"] for c in calls))["city"]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_a_tool_result_round_trip(anthropic: AnthropicProvider,
                                        upstream: SimulatedUpstream) -> None:
    call = {"id": "toolu_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    request = ChatRequest.from_dict({"messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C and sunny"},
    ], "tools": [WEATHER_TOOL]})
    response = await anthropic.complete(request, model="m", timeouts=FAST)
    sent = upstream.last_body["m"]["messages"]
    assert sent[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]}
    assert sent[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}]}
    assert response.text.startswith("Based on the tool result")


async def test_json_schema_is_asked_through_the_system_prompt(
    anthropic: AnthropicProvider,
) -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}},
              "required": ["label"]}
    request = ask("classify this", response_format={
        "type": "json_schema", "json_schema": {"name": "label", "schema": schema}})
    response = await anthropic.complete(request, model="m", timeouts=FAST)
    jsonschema.validate(json.loads(response.text), schema)


@pytest.mark.parametrize("status", [400, 401, 404, 500, 529])
async def test_maps_anthropic_error_bodies(
    anthropic: AnthropicProvider, upstream: SimulatedUpstream, status: int,
) -> None:
    upstream.fail("m", status)
    with pytest.raises(UpstreamStatus) as caught:
        await anthropic.complete(ask(), model="m", timeouts=FAST)
    assert caught.value.status == status
    assert f"simulated failure {status}" in str(caught.value)
    if status == 529:
        assert "overloaded_error" in str(caught.value)


async def test_429_with_retry_after(anthropic: AnthropicProvider,
                                    upstream: SimulatedUpstream) -> None:
    upstream.fail("m", 429, retry_after=3)
    with pytest.raises(RateLimited) as caught:
        await anthropic.complete(ask(), model="m", timeouts=FAST)
    assert caught.value.retry_after == 3.0
    with pytest.raises(RateLimited):
        await collect(anthropic, ask())


async def test_timeouts_by_phase(anthropic: AnthropicProvider,
                                 upstream: SimulatedUpstream) -> None:
    upstream.answer_slowly("m", 2.0, times=1)
    with pytest.raises(UpstreamTimeout) as first:
        await collect(anthropic, ask(), Timeouts(connect=1, first_token=0.1, total=5))
    assert first.value.phase == "first_token"
    upstream.behave("m", token_delay_s=0.2)
    with pytest.raises(UpstreamTimeout) as total:
        await collect(anthropic, ask(), Timeouts(connect=1, first_token=1, total=0.3))
    assert total.value.phase == "total"


async def test_dropped_stream_malformed_sse_and_body(
    anthropic: AnthropicProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.drop_connection("m", after=3, times=1)
    with pytest.raises(UpstreamConnectionError):
        await collect(anthropic, ask())
    upstream.send_malformed_sse("m", times=1)
    with pytest.raises(MalformedResponse):
        await collect(anthropic, ask())
    upstream.send_malformed_body("m", times=1)
    with pytest.raises(MalformedResponse):
        await anthropic.complete(ask(), model="m", timeouts=FAST)
    assert (await anthropic.complete(ask(), model="m", timeouts=FAST)).text


async def test_missing_key_names_the_variable() -> None:
    spec = ProviderSpec("claude", "anthropic", "http://127.0.0.1:9", api_key_env="ANTHROPIC_KEY_X")
    provider = AnthropicProvider(spec, env={})
    with pytest.raises(ConfigError, match="ANTHROPIC_KEY_X"):
        await provider.complete(ask(), model="m", timeouts=FAST)
    assert "ANTHROPIC_KEY_X" not in repr(provider)


async def test_accepts_a_base_url_with_or_without_v1() -> None:
    async with SimulatedUpstream({"m": ModelProfile()}) as upstream:
        for base in (upstream.url, upstream.url + "/v1/"):
            provider = AnthropicProvider(ProviderSpec("a", "anthropic", base))
            try:
                assert (await provider.complete(ask(), model="m", timeouts=FAST)).text
            finally:
                await provider.aclose()
