"""The Bedrock Converse adapter against the simulated upstream over real HTTP (every request
SigV4-signed and checked), and the stand-in itself checked with boto3's `bedrock-runtime`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import botocore.exceptions
import jsonschema
import pytest
from botocore.config import Config

from taskroute.exceptions import (
    ConfigError,
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamStatus,
)
from taskroute.gates.refusal import RefusalGate
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.bedrock import BedrockProvider, build
from taskroute.providers.registry import build_provider
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest

FAST = Timeouts(connect=2, first_token=5, total=10)
KEY_ID, SECRET = "AKIDTESTTESTTEST", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENV = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-west-2",
       "HOME": "/nonexistent"}
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PARAMETERS: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather now", "parameters": PARAMETERS}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture
async def signed_upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream(aws_credentials=(KEY_ID, SECRET)) as upstream:
        yield upstream


@pytest.fixture
async def bedrock(signed_upstream: SimulatedUpstream) -> AsyncIterator[BedrockProvider]:
    spec = signed_upstream.provider_spec("sim-bedrock", "bedrock")
    provider = BedrockProvider(spec, env=ENV)
    yield provider
    await provider.aclose()


def client(url: str, secret: str = SECRET) -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id=KEY_ID, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1}))


# -- the stand-in, as boto3 sees it -------------------------------------------------------------

def _converse_with_boto3(url: str) -> dict[str, Any]:
    runtime = client(url)
    ask = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "hello"}]}],
           "system": [{"text": "Be brief."}]}
    whole = runtime.converse(**ask)
    events = list(runtime.converse_stream(**ask)["stream"])
    tool = runtime.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "weather in Oslo"}]}],
        toolConfig={"tools": [{"toolSpec": {"name": "get_weather",
                                            "inputSchema": {"json": PARAMETERS}}}],
                    "toolChoice": {"any": {}}})
    errors = []
    for secret in ("not-the-secret", SECRET):
        try:
            client(url, secret).converse(modelId="throttled", messages=ask["messages"])
        except botocore.exceptions.ClientError as exc:
            errors.append(exc.response["Error"]["Code"])
    return {"whole": whole, "events": events, "tool": tool, "errors": errors}


async def test_boto3_converses_and_streams_with_the_signed_stand_in(
    signed_upstream: SimulatedUpstream,
) -> None:
    signed_upstream.fail("throttled", 429)
    got = await asyncio.to_thread(_converse_with_boto3, signed_upstream.url)
    whole, events = got["whole"], got["events"]
    text = whole["output"]["message"]["content"][0]["text"]
    assert text == f"{MODEL} answers: hello."
    assert whole["stopReason"] == "end_turn" and whole["usage"]["outputTokens"] == 3
    assert [next(iter(e)) for e in events[:1] + events[-2:]] == [
        "messageStart", "messageStop", "metadata"]
    streamed = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events
                       if "contentBlockDelta" in e)
    assert streamed == text
    use = got["tool"]["output"]["message"]["content"][0]["toolUse"]
    assert use["name"] == "get_weather" and use["input"] == {"city": "weather in Oslo"}
    assert got["tool"]["stopReason"] == "tool_use"
    # a wrong secret fails the signature check; a right one reaches the throttled model
    assert got["errors"] == ["AccessDeniedException", "ThrottlingException"]


# -- the adapter --------------------------------------------------------------------------------

async def test_completes_signed_with_system_and_usage(
    bedrock: BedrockProvider, signed_upstream: SimulatedUpstream,
) -> None:
    response = await bedrock.complete(
        ChatRequest.from_prompt("capital of France", system="Be brief.", max_tokens=100),
        model=MODEL, timeouts=FAST)
    assert response.text == f"{MODEL} answers: capital of France."
    assert response.finish_reason == "stop"
    assert response.usage is not None and response.usage.completion_tokens == 5
    body = signed_upstream.last_body[MODEL]
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 100}
    authorization = signed_upstream.last_headers[MODEL]["Authorization"]
    assert f"Credential={KEY_ID}/" in authorization and "/us-west-2/bedrock/" in authorization


async def test_streams_the_same_answer_from_the_event_stream(bedrock: BedrockProvider) -> None:
    request = ChatRequest.from_prompt("capital of France")
    whole = await bedrock.complete(request, model=MODEL, timeouts=FAST)
    chunks = [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
    assert "".join(c.delta_text for c in chunks) == whole.text
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_come_back_in_openai_shape(
    bedrock: BedrockProvider, stream: bool,
) -> None:
    request = ChatRequest.from_prompt("weather in Oslo", tools=[WEATHER], tool_choice="required")
    if stream:
        chunks = [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
        calls = [call for c in chunks for choice in c.data["choices"]
                 for call in choice["delta"].get("tool_calls") or []]
        arguments = "".join(c["function"].get("arguments", "") for c in calls)
        assert calls[0]["id"].startswith("tooluse_") and len(calls) > 2
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    else:
        response = await bedrock.complete(request, model=MODEL, timeouts=FAST)
        assert response.finish_reason == "tool_calls" and response.tool_calls
        arguments = response.tool_calls[0]["function"]["arguments"]
    assert json.loads(arguments) == {"city": "weather in Oslo"}


async def test_a_tool_result_goes_back_as_a_tool_result_block(
    bedrock: BedrockProvider, signed_upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_prompt("weather in Oslo", tools=[WEATHER], tool_choice="required")
    calls = (await bedrock.complete(request, model=MODEL, timeouts=FAST)).tool_calls
    assert calls
    follow = ChatRequest.from_dict({"tools": [WEATHER], "messages": [
        {"role": "user", "content": "weather in Oslo"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp_c": 4}'}]})
    answer = await bedrock.complete(follow, model=MODEL, timeouts=FAST)
    assert answer.text.startswith("Based on the tool result")
    turn = signed_upstream.last_body[MODEL]["messages"][2]
    assert turn == {"role": "user", "content": [{"toolResult": {
        "toolUseId": calls[0]["id"], "content": [{"json": {"temp_c": 4}}]}}]}


async def test_json_schema_is_asked_in_the_system_prompt(bedrock: BedrockProvider) -> None:
    request = ChatRequest.from_prompt("Oslo", response_format={
        "type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}})
    response = await bedrock.complete(request, model=MODEL, timeouts=FAST)
    jsonschema.validate(json.loads(response.text), SCHEMA)


async def test_cache_points_report_writes_then_reads(
    bedrock: BedrockProvider, signed_upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_dict({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long rules. " * 100,
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hi"}]})
    first = await bedrock.complete(request, model=MODEL, timeouts=FAST)
    second = await bedrock.complete(request, model=MODEL, timeouts=FAST)
    assert signed_upstream.last_body[MODEL]["system"][1] == {"cachePoint": {"type": "default"}}
    assert first.usage is not None and second.usage is not None
    assert first.usage.cache_write_tokens > 0 and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == first.usage.cache_write_tokens
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


async def test_a_guardrail_is_content_filter_that_the_refusal_gate_fails(
    bedrock: BedrockProvider, signed_upstream: SimulatedUpstream,
) -> None:
    signed_upstream.refuse(MODEL, times=2)
    request = ChatRequest.from_prompt("something")
    response = await bedrock.complete(request, model=MODEL, timeouts=FAST)
    assert response.finish_reason == "content_filter"
    assert not RefusalGate().check(response, request).passed
    chunks = [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]


async def test_errors_become_upstream_errors(
    bedrock: BedrockProvider, signed_upstream: SimulatedUpstream,
) -> None:
    request = ChatRequest.from_prompt("hello")
    signed_upstream.fail(MODEL, 429, retry_after=2, times=1)
    with pytest.raises(RateLimited, match="ThrottlingException") as limited:
        await bedrock.complete(request, model=MODEL, timeouts=FAST)
    assert limited.value.retry_after == 2
    signed_upstream.fail(MODEL, 503, times=1)
    with pytest.raises(UpstreamStatus, match="ServiceUnavailableException"):
        [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
    signed_upstream.drop_connection(MODEL, after=2, times=1)
    with pytest.raises(UpstreamConnectionError):
        [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
    signed_upstream.send_malformed_sse(MODEL, times=1)   # a frame with a bad CRC
    with pytest.raises(MalformedResponse, match="CRC"):
        [c async for c in bedrock.stream(request, model=MODEL, timeouts=FAST)]
    signed_upstream.send_malformed_body(MODEL, times=1)
    with pytest.raises(MalformedResponse):
        await bedrock.complete(request, model=MODEL, timeouts=FAST)


async def test_wrong_credentials_are_refused_and_missing_ones_named(
    signed_upstream: SimulatedUpstream,
) -> None:
    spec = signed_upstream.provider_spec("b", "bedrock")
    wrong = BedrockProvider(spec, env={**ENV, "AWS_SECRET_ACCESS_KEY": "nope"})
    with pytest.raises(UpstreamStatus) as refused:
        await wrong.complete(ChatRequest.from_prompt("hi"), model=MODEL, timeouts=FAST)
    assert refused.value.status == 403 and "nope" not in str(refused.value)
    await wrong.aclose()
    none = BedrockProvider(spec, env={"HOME": "/nonexistent", "AWS_REGION": "eu-west-1"})
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        await none.complete(ChatRequest.from_prompt("hi"), model=MODEL, timeouts=FAST)
    await none.aclose()


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(
    signed_upstream: SimulatedUpstream,
) -> None:
    async with SimulatedUpstream(api_key="bedrock-api-key-123") as keyed:
        spec = keyed.provider_spec("b", "bedrock", api_key_env="AWS_BEARER_TOKEN_BEDROCK")
        provider = BedrockProvider(spec, env={"AWS_BEARER_TOKEN_BEDROCK": "bedrock-api-key-123"})
        response = await provider.complete(ChatRequest.from_prompt("hi"), model=MODEL,
                                           timeouts=FAST)
        await provider.aclose()
    assert response.text == f"{MODEL} answers: hi."
    assert keyed.last_headers[MODEL]["Authorization"] == "Bearer bedrock-api-key-123"


def test_the_bedrock_kind_is_registered_and_takes_profile_and_region() -> None:
    spec = ProviderSpec(name="b", api="bedrock",
                        base_url="https://bedrock-runtime.eu-central-1.amazonaws.com",
                        options={"profile": "prod", "region": "eu-central-1"})
    assert isinstance(build_provider(spec), BedrockProvider)
    assert BedrockProvider.path("us.amazon.nova-pro-v1:0", stream=True) == (
        "/model/us.amazon.nova-pro-v1%3A0/converse-stream")
    with pytest.raises(ValueError, match="regon"):
        build(ProviderSpec(name="b", api="bedrock", base_url="https://x",
                           options={"regon": "x"}), None)
