"""One policy across three provider kinds (Gemini, Bedrock, OpenAI), all served by the
stand-in: failing over from one wire format to the next keeps tools and structured output
working, streaming included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

from taskroute.policy import parse_policy
from taskroute.providers.registry import build_providers
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router

KEY_ID, SECRET = "AKIDTHREEPROVIDERS", "three-provider-secret"
ENV = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "HOME": "/nonexistent"}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"]}
TOOL = {"type": "function", "function": {
    "name": "lookup_order", "parameters": {"type": "object", "properties": {
        "order_id": {"type": "string"}}, "required": ["order_id"]}}}
BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-v1:0"


def policy_text(url: str) -> str:
    return f"""\
name: three providers
providers:
  gemini: {{api: gemini, base url: "{url}", simulated: true}}
  bedrock: {{api: bedrock, base url: "{url}", simulated: true, options: {{region: us-east-1}}}}
  openai: {{api: openai, base url: "{url}/v1", simulated: true}}
models:
  gemini/gemini-flash: {{tier: fast, price: {{input: 0.3, output: 2.5}}}}
  bedrock/{BEDROCK_MODEL}: {{tier: balanced, price: {{input: 1, output: 5}}}}
  openai/gpt-large: {{tier: strong, price: {{input: 2, output: 8}}}}
tiers:
  fast: {{use: gemini/gemini-flash, escalate to: [balanced, strong]}}
  balanced: {{use: bedrock/{BEDROCK_MODEL}, escalate to: [strong]}}
  strong: {{use: openai/gpt-large}}
tasks:
  extraction: {{tier: fast, gates: [non_empty, valid_json_if_asked, schema]}}
  tool_use: {{tier: fast, gates: [non_empty]}}
when unsure: extraction
"""


@pytest.fixture
async def routed() -> AsyncIterator[tuple[Router, SimulatedUpstream]]:
    async with SimulatedUpstream(aws_credentials=(KEY_ID, SECRET)) as upstream:
        policy = parse_policy(policy_text(upstream.url), file="three.yaml")
        providers = build_providers(policy, env=ENV)
        yield Router(policy, classifier=False, providers=providers), upstream
        for provider in providers.values():
            await provider.aclose()


def extraction(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "Ada Lovelace, 36"}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "person", "schema": SCHEMA}}, **fields}


async def test_structured_output_survives_gemini_failing_over_to_bedrock(
    routed: tuple[Router, SimulatedUpstream],
) -> None:
    router, upstream = routed
    upstream.fail("gemini-flash", 503)
    result = await router.complete(extraction(), task="extraction")
    assert result.record.answered_by == f"bedrock/{BEDROCK_MODEL}"
    jsonschema.validate(json.loads(result.response.text), SCHEMA)
    assert {a.model for a in result.record.attempts if a.status != "ok"} == {
        "gemini/gemini-flash"}


async def test_a_schema_rejection_on_two_kinds_ends_on_the_third(
    routed: tuple[Router, SimulatedUpstream],
) -> None:
    router, upstream = routed
    upstream.return_invalid_json("gemini-flash")
    upstream.return_invalid_json(BEDROCK_MODEL)
    result = await router.complete(extraction(), task="extraction")
    assert result.record.answered_by == "openai/gpt-large"
    jsonschema.validate(json.loads(result.response.text), SCHEMA)
    assert [a.status for a in result.record.attempts] == ["rejected", "rejected", "ok"]
    assert upstream.last_body["gemini-flash"]["generationConfig"]["responseJsonSchema"] == SCHEMA


async def test_tools_keep_working_across_the_failover(
    routed: tuple[Router, SimulatedUpstream],
) -> None:
    router, upstream = routed
    upstream.fail("gemini-flash", 500)
    question: list[dict[str, Any]] = [{"role": "user", "content": "where is order A-17"}]
    request = {"messages": question,
               "tools": [TOOL], "tool_choice": "required"}
    called = await router.complete(request, task="tool_use")
    assert called.record.answered_by == f"bedrock/{BEDROCK_MODEL}"
    calls = called.response.tool_calls
    assert calls and calls[0]["function"]["name"] == "lookup_order"
    upstream.answer_normally("gemini-flash")
    upstream.fail(BEDROCK_MODEL, 503)
    # the tool result goes back to another kind than the one that made the call
    follow = {"tools": [TOOL], "messages": [
        *question, {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"status": "shipped"}'}]}
    answered = await router.complete(follow, task="tool_use")
    assert answered.record.answered_by == "gemini/gemini-flash"
    assert answered.response.text.startswith("Based on the tool result")
    sent = upstream.last_body["gemini-flash"]["contents"][-1]["parts"][0]
    assert sent == {"functionResponse": {"name": "lookup_order",
                                         "response": {"status": "shipped"}}}


async def test_a_stream_fails_over_from_gemini_to_bedrock(
    routed: tuple[Router, SimulatedUpstream],
) -> None:
    router, upstream = routed
    upstream.fail("gemini-flash", 503)
    stream = router.stream(extraction(stream=True), task="extraction")
    text = "".join([chunk.delta_text async for chunk in stream])
    jsonschema.validate(json.loads(text), SCHEMA)
    assert upstream.completed[BEDROCK_MODEL] == 1 and upstream.completed["gemini-flash"] == 0
    assert upstream.requests["gemini-flash"] >= 1
