"""The Gemini adapter against the simulated upstream over real HTTP, and the stand-in itself
checked with Google's `google-genai` SDK as its client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from taskroute.exceptions import (
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamStatus,
)
from taskroute.gates.refusal import RefusalGate
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.gemini import GeminiProvider, build
from taskroute.providers.gemini_format import SIGNATURE_MARK, to_gemini_request
from taskroute.providers.registry import build_provider
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest

from .conftest import KEY, KEY_ENV

FAST = Timeouts(connect=2, first_token=5, total=10)
PARAMETERS: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather now",
    "parameters": PARAMETERS}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                           "population": {"type": "integer"}},
          "required": ["city", "population"]}
LONG = "Background you must keep in mind. " * 200
# google-genai subclasses aiohttp's ClientSession, which aiohttp warns about.
SDK_WARNING = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@pytest.fixture
async def gemini(upstream: SimulatedUpstream) -> AsyncIterator[GeminiProvider]:
    spec = upstream.provider_spec("sim-gemini", "gemini", api_key_env=KEY_ENV)
    provider = GeminiProvider(spec, env={KEY_ENV: KEY})
    yield provider
    await provider.aclose()


def sdk(upstream: SimulatedUpstream) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=upstream.url))


# -- the stand-in, as Google's SDK sees it ------------------------------------------------------

@SDK_WARNING
async def test_google_sdk_generates_and_streams_from_the_stand_in(
    upstream: SimulatedUpstream,
) -> None:
    client = sdk(upstream)
    config = types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=50)
    whole = await client.aio.models.generate_content(model="g", contents="hello there",
                                                     config=config)
    pieces = [c async for c in await client.aio.models.generate_content_stream(
        model="g", contents="hello there", config=config)]
    assert whole.text == "g answers: hello there."
    assert "".join(c.text or "" for c in pieces) == whole.text
    assert len(pieces) > 1
    assert whole.candidates and whole.candidates[0].finish_reason == types.FinishReason.STOP
    last = pieces[-1].usage_metadata
    assert last is not None and whole.usage_metadata is not None
    assert last.candidates_token_count == whole.usage_metadata.candidates_token_count == 4
    assert upstream.last_headers["g"]["x-goog-api-key"] == KEY


@SDK_WARNING
async def test_google_sdk_gets_function_calls_json_and_blocks(
    upstream: SimulatedUpstream,
) -> None:
    client = sdk(upstream)
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", parameters_json_schema=PARAMETERS)])
    called = await client.aio.models.generate_content(
        model="g", contents="weather in Paris", config=types.GenerateContentConfig(
            tools=[tool], tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY))))
    assert called.function_calls and called.function_calls[0].name == "get_weather"
    assert called.function_calls[0].args == {"city": "weather in Paris"}
    shaped = await client.aio.models.generate_content(
        model="g", contents="Paris facts", config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=SCHEMA))
    jsonschema.validate(shaped.parsed, SCHEMA)
    blocked = await client.aio.models.generate_content(model="g", contents="[blocked] now")
    assert blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    upstream.fail("g", 429, times=1)
    with pytest.raises(genai_errors.ClientError) as failed:
        await client.aio.models.generate_content(model="g", contents="x")
    assert failed.value.code == 429 and failed.value.status == "RESOURCE_EXHAUSTED"


# -- the adapter --------------------------------------------------------------------------------

async def test_completes_with_system_instruction_key_header_and_usage(
    gemini: GeminiProvider, upstream: SimulatedUpstream,
) -> None:
    response = await gemini.complete(
        ChatRequest.from_prompt("what is the capital of France", system="Be brief.",
                                max_tokens=100), model="gemini-2.5-flash", timeouts=FAST)
    assert response.text == "gemini-2.5-flash answers: what is the capital of France."
    assert response.finish_reason == "stop"
    assert response.usage is not None and response.usage.completion_tokens == 8
    body = upstream.last_body["gemini-2.5-flash"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [
        {"text": "what is the capital of France"}]}]
    assert body["generationConfig"] == {"maxOutputTokens": 100}
    assert upstream.last_headers["gemini-2.5-flash"]["x-goog-api-key"] == KEY


async def test_streams_the_same_answer_with_usage_last(gemini: GeminiProvider) -> None:
    request = ChatRequest.from_prompt("what is the capital of France")
    whole = await gemini.complete(request, model="g", timeouts=FAST)
    chunks = [c async for c in gemini.stream(request, model="g", timeouts=FAST)]
    assert "".join(c.delta_text for c in chunks) == whole.text
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].data["choices"] == []
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens)


async def test_tool_call_and_its_result_make_a_round_trip(
    gemini: GeminiProvider, upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_prompt("weather in Paris", tools=[WEATHER],
                                      tool_choice="required")
    called = await gemini.complete(request, model="g", timeouts=FAST)
    calls = called.tool_calls
    assert called.finish_reason == "tool_calls" and calls
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "weather in Paris"}
    assert upstream.last_body["g"]["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    follow = ChatRequest.from_dict({"tools": [WEATHER], "messages": [
        {"role": "user", "content": "weather in Paris"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp_c": 21}'}]})
    answer = await gemini.complete(follow, model="g", timeouts=FAST)
    assert answer.text.startswith("Based on the tool result")
    turns = upstream.last_body["g"]["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert turns[2]["parts"] == [{"functionResponse": {
        "name": "get_weather", "response": {"temp_c": 21}}}]


async def test_streamed_tool_call_comes_whole(gemini: GeminiProvider) -> None:
    request = ChatRequest.from_prompt("weather in Paris", tools=[WEATHER],
                                      tool_choice="required")
    chunks = [c async for c in gemini.stream(request, model="g", timeouts=FAST)]
    deltas = [call for c in chunks for choice in c.data["choices"]
              for call in choice["delta"].get("tool_calls") or []]
    assert len(deltas) == 1 and deltas[0]["index"] == 0 and deltas[0]["id"]
    assert json.loads(deltas[0]["function"]["arguments"]) == {"city": "weather in Paris"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_json_schema_is_asked_as_response_json_schema(
    gemini: GeminiProvider, upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_prompt("Paris facts", response_format={
        "type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}})
    response = await gemini.complete(request, model="g", timeouts=FAST)
    jsonschema.validate(json.loads(response.text), SCHEMA)
    config = upstream.last_body["g"]["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_safety_block_is_content_filter_that_the_refusal_gate_fails(
    gemini: GeminiProvider, upstream: SimulatedUpstream, stream: bool,
) -> None:
    request = ChatRequest.from_prompt("[blocked] how to pick a lock")
    if stream:
        chunks = [c async for c in gemini.stream(request, model="g", timeouts=FAST)]
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]
        assert "SAFETY" in chunks[0].data["choices"][0]["delta"]["refusal"]
        return
    response = await gemini.complete(request, model="g", timeouts=FAST)
    assert response.finish_reason == "content_filter"
    verdict = RefusalGate().check(response, request)
    assert not verdict.passed and "SAFETY" in verdict.reason
    upstream.refuse("g", times=1)   # an answer stopped for safety, not the prompt
    stopped = await gemini.complete(ChatRequest.from_prompt("hi"), model="g", timeouts=FAST)
    assert stopped.finish_reason == "content_filter"


async def test_cached_and_thinking_tokens_are_reported(
    gemini: GeminiProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.set_profile("g", ModelProfile(reasoning_tokens=7))
    request = ChatRequest.from_dict({"messages": [
        {"role": "user", "content": LONG}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "so?"}]})
    first = await gemini.complete(request, model="g", timeouts=FAST)
    second = await gemini.complete(request, model="g", timeouts=FAST)
    assert first.usage is not None and second.usage is not None
    assert first.usage.cached_tokens == 0 and second.usage.cached_tokens > 1000
    assert second.usage.reasoning_tokens == 7
    assert second.usage.completion_tokens == first.usage.completion_tokens
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


async def test_errors_become_upstream_errors(
    gemini: GeminiProvider, upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_prompt("hello")
    upstream.fail("g", 429, retry_after=3, times=1)
    with pytest.raises(RateLimited) as limited:
        await gemini.complete(request, model="g", timeouts=FAST)
    assert limited.value.retry_after == 3
    assert "RESOURCE_EXHAUSTED" in str(limited.value)
    upstream.fail("g", 503, times=1)
    with pytest.raises(UpstreamStatus) as unavailable:
        await gemini.complete(request, model="g", timeouts=FAST)
    assert unavailable.value.status == 503
    upstream.drop_connection("g", after=2, times=1)
    with pytest.raises(UpstreamConnectionError):
        [c async for c in gemini.stream(request, model="g", timeouts=FAST)]
    upstream.send_malformed_sse("g", times=1)
    with pytest.raises(MalformedResponse):
        [c async for c in gemini.stream(request, model="g", timeouts=FAST)]
    upstream.send_malformed_body("g", times=1)
    with pytest.raises(MalformedResponse):
        await gemini.complete(request, model="g", timeouts=FAST)


def test_thought_signatures_travel_in_the_call_id() -> None:
    call = {"id": f"call_abc{SIGNATURE_MARK}c2lnbmVk", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    request = ChatRequest.from_dict({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]})
    contents: list[dict[str, Any]] = to_gemini_request(request)["contents"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "get_weather",
                                                      "args": {"city": "Oslo"}},
                                     "thoughtSignature": "c2lnbmVk"}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                          "response": {"result": "sunny"}}}]


def test_the_gemini_kind_is_registered_and_refuses_unknown_options() -> None:
    spec = ProviderSpec(name="g", api="gemini", base_url="https://generativelanguage.googleapis.com",
                        options={"api_version": "v1"})
    provider = build_provider(spec)
    assert isinstance(provider, GeminiProvider)
    assert provider.path("gemini-2.5-pro", stream=True) == (
        "/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    with pytest.raises(ValueError, match="regoin"):
        build(ProviderSpec(name="g", api="gemini", base_url="https://x",
                           options={"regoin": "eu"}), None)
