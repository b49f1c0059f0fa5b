"""Anthropic's own request details reach an Anthropic upstream through either client API —
prompt caching (`cache_control`, `anthropic-beta`), `thinking`, `top_k`, `stop_sequences`,
`metadata.user_id`, blocks the translator does not know — and never an OpenAI upstream."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from tests.gateway.conftest import RunningGateway

HAIKU, HAIKU_NAME = "anthropic/claude-haiku-4-5", "claude-haiku-4-5"
MINI, MINI_NAME = "openai/gpt-4.1-mini", "gpt-4.1-mini"
EPHEMERAL = {"type": "ephemeral"}
BETA = "prompt-caching-2024-07-31"
THINKING = {"type": "enabled", "budget_tokens": 1024}
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                           "data": "The owl is a night bird."}}
WEATHER = {"name": "weather", "description": "the weather",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def messages_body(model: str) -> dict[str, Any]:
    return {
        "model": model, "max_tokens": 2000,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}],
        "messages": [{"role": "user", "content": [
            DOCUMENT,
            {"type": "text", "text": "What bird is it?", "cache_control": EPHEMERAL}]}],
        "tools": [{**WEATHER, "cache_control": EPHEMERAL}],
        "thinking": THINKING, "stop_sequences": ["STOP"], "metadata": {"user_id": "u-7"},
        "extra_body": {"top_k": 5},   # a Messages field this SDK version has no argument for
    }


def anthropic_client(gw: RunningGateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key="none", max_retries=0,
                                    default_headers={"anthropic-beta": BETA})


def openai_client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="none", max_retries=0,
                              default_headers={"anthropic-beta": BETA})


def assert_anthropic_details(body: dict[str, Any], headers: dict[str, str]) -> None:
    assert headers.get("anthropic-beta") == BETA
    assert body["system"][0] == {"type": "text", "text": "You are terse.",
                                 "cache_control": EPHEMERAL}
    content = body["messages"][0]["content"]
    assert DOCUMENT in content
    assert {"type": "text", "text": "What bird is it?", "cache_control": EPHEMERAL} in content
    assert body["tools"][0]["cache_control"] == EPHEMERAL
    assert body["thinking"] == THINKING and body["top_k"] == 5
    assert body["stop_sequences"] == ["STOP"]
    assert body["metadata"] == {"user_id": "u-7"}


async def test_messages_api_details_reach_an_anthropic_upstream(gateway: RunningGateway) -> None:
    async with anthropic_client(gateway) as c:
        await c.messages.create(**messages_body(HAIKU))
    up = gateway.upstream
    assert_anthropic_details(up.last_body[HAIKU_NAME], up.last_headers[HAIKU_NAME])


async def test_messages_api_streamed_details_reach_an_anthropic_upstream(
    gateway: RunningGateway,
) -> None:
    async with anthropic_client(gateway) as c, c.messages.stream(
            **messages_body(HAIKU)) as stream:
        await stream.get_final_message()
    up = gateway.upstream
    assert_anthropic_details(up.last_body[HAIKU_NAME], up.last_headers[HAIKU_NAME])


def chat_body() -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": [
                DOCUMENT,
                {"type": "text", "text": "What bird is it?", "cache_control": EPHEMERAL}]}],
        "tools": [{"type": "function", "cache_control": EPHEMERAL, "function": {
            "name": "weather", "description": "the weather",
            "parameters": WEATHER["input_schema"]}}],
        "max_tokens": 2000, "user": "u-7",
    }


ANTHROPIC_EXTRA = {"thinking": THINKING, "top_k": 5, "stop_sequences": ["STOP"]}


async def test_chat_completions_details_reach_an_anthropic_upstream(
    gateway: RunningGateway,
) -> None:
    async with openai_client(gateway) as c:
        await c.chat.completions.create(model=HAIKU, extra_body=ANTHROPIC_EXTRA, **chat_body())
    up = gateway.upstream
    assert_anthropic_details(up.last_body[HAIKU_NAME], up.last_headers[HAIKU_NAME])


async def test_a_compatible_server_gets_the_callers_body_less_taskroutes_wrappers(
    gateway: RunningGateway,
) -> None:
    """The simulated upstream at 127.0.0.1 is an OpenAI-compatible server, not OpenAI itself
    (for which see the next test): it gets what the caller sent, as before."""
    async with openai_client(gateway) as c:
        await c.chat.completions.create(model=MINI, extra_body=ANTHROPIC_EXTRA, **chat_body())
    up = gateway.upstream
    body, headers = up.last_body[MINI_NAME], up.last_headers[MINI_NAME]
    assert "anthropic-beta" not in {k.lower() for k in headers}
    assert body["top_k"] == 5 and body["messages"][1]["content"][0] == DOCUMENT

    async with anthropic_client(gateway) as ac:
        await ac.messages.create(**messages_body(MINI))
    body = up.last_body[MINI_NAME]
    assert "document" not in repr(body)    # a wrapped Anthropic block: never for OpenAI kinds
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "What bird is it?", "cache_control": EPHEMERAL}]


def test_openai_itself_gets_none_of_anthropics_details() -> None:
    from taskroute.policy.model import ProviderSpec
    from taskroute.providers.anthropic_inbound import from_messages_request
    from taskroute.providers.openai import OpenAIProvider
    from taskroute.request import ChatRequest

    chat = chat_body()
    chat["messages"] += [{"role": "assistant", "content": "An owl.", "thinking_blocks": [
        {"type": "thinking", "thinking": "Night bird...", "signature": "s"}]},
        {"role": "user", "content": "Sure?"}]
    from_chat = ChatRequest.from_dict({**chat, **ANTHROPIC_EXTRA})
    assert from_chat.messages[2].thinking_blocks
    messages = {k: v for k, v in messages_body(HAIKU).items() if k != "extra_body"}
    from_messages = from_messages_request({**messages, "top_k": 5})
    provider = OpenAIProvider(ProviderSpec("openai", "openai", "https://api.openai.com/v1"))
    for request in (from_chat, from_messages):
        body = provider._body(request, "gpt-4.1-mini", stream=False)
        assert not {"thinking", "stop_sequences", "top_k"} & body.keys()
        assert body["stop"] == ["STOP"]
        assert "cache_control" not in repr(body) and "thinking_blocks" not in repr(body)
    assert "document" not in repr(provider._body(from_messages, "m", stream=False))


def test_server_tools_and_rich_tool_results_round_trip_to_anthropic() -> None:
    from taskroute.providers.anthropic_format import to_messages_request
    from taskroute.providers.anthropic_inbound import from_messages_request

    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
              "content": [{"type": "text", "text": "no such city"}]}
    thinking = {"type": "thinking", "thinking": "Let me look.", "signature": "sig"}
    chat = from_messages_request({"model": "m", "max_tokens": 10, "tools": [search, WEATHER],
                                  "messages": [
        {"role": "user", "content": "weather in Atlantis?"},
        {"role": "assistant", "content": [thinking, {"type": "tool_use", "id": "toolu_1",
                                                     "name": "weather", "input": {}}]},
        {"role": "user", "content": [result]}]})
    body = to_messages_request(chat, "claude")
    assert body["tools"][0] == search and body["tools"][1]["name"] == "weather"
    assert body["messages"][1]["content"][0] == thinking
    assert body["messages"][2]["content"] == [result]
    assert chat.messages[2].text == "no such city"   # what routing reads of it


THOUGHT = {"type": "thinking", "thinking": "Let me think this through.",
           "signature": "sig-simulated"}     # what the simulated Anthropic upstream thinks


async def test_thinking_comes_back_through_the_messages_api(gateway: RunningGateway) -> None:
    ask: dict[str, Any] = {"model": HAIKU, "max_tokens": 2000, "thinking": THINKING,
                           "messages": [{"role": "user", "content": "hello there"}]}
    async with anthropic_client(gateway) as c:
        message = await c.messages.create(**ask)
        async with c.messages.stream(**ask) as stream:
            streamed = await stream.get_final_message()
    for got in (message, streamed):
        assert got.content[0].model_dump(exclude_none=True) == THOUGHT
        assert got.content[1].type == "text"


async def test_thinking_comes_back_through_chat_completions_and_goes_upstream_again(
    gateway: RunningGateway,
) -> None:
    question: Any = {"role": "user", "content": "hello there"}
    async with openai_client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=HAIKU, messages=[question], extra_body={"thinking": THINKING})
        stream = await c.chat.completions.create(
            model=HAIKU, messages=[question], extra_body={"thinking": THINKING}, stream=True)
        deltas = [ch.choices[0].delta.model_dump() async for ch in stream if ch.choices]
        message = raw.parse().choices[0].message.model_dump()
        assert message["reasoning_content"] == THOUGHT["thinking"]
        assert message["thinking_blocks"] == [THOUGHT]
        assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT["thinking"]
        assert [b for d in deltas for b in d.get("thinking_blocks") or []] == [THOUGHT]
        turns: Any = [question, {"role": "assistant", "content": message["content"],
                                 "thinking_blocks": [THOUGHT]},
                      {"role": "user", "content": "and then?"}]
        await c.chat.completions.create(model=HAIKU, messages=turns,
                                        extra_body={"thinking": THINKING})
    assert gateway.upstream.last_body[HAIKU_NAME]["messages"][1]["content"][0] == THOUGHT


def test_the_clients_anthropic_beta_follows_the_policys_and_only_for_anthropic() -> None:
    from taskroute.providers.vendor_fields import forwarded_headers, headers_for

    client = forwarded_headers({"anthropic-beta": BETA, "authorization": "Bearer k"})
    assert client == {"anthropic-beta": BETA}
    assert headers_for("anthropic", client, {"Anthropic-Beta": "files-api-2025-04-14"}) == {
        "anthropic-beta": f"files-api-2025-04-14,{BETA}"}
    assert headers_for("anthropic", client, {}) == {"anthropic-beta": BETA}
    assert headers_for("openai", client, {}) == {}
