"""/v1/messages driven by the official `anthropic` SDK: routed, streamed and not, tools."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.gateway.conftest import RunningGateway


def client(gw: RunningGateway, headers: dict[str, str] | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key="none", max_retries=0, timeout=10,
                                    default_headers=headers)


async def test_answers_in_the_messages_shape(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        raw = await c.messages.with_raw_response.create(
            model="auto", max_tokens=200,
            system="You are terse.",
            messages=[{"role": "user", "content": "hello there"}])
    message = await raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert message.model == raw.headers["x-taskroute-model"] == "openai/gpt-4.1-mini"
    assert raw.headers["x-taskroute-task"] == "chat"
    rows = await gateway.log_rows()
    assert [r["api"] for r in rows] == ["anthropic"]


async def test_streams_anthropic_events(gateway: RunningGateway) -> None:
    async with client(gateway) as c, c.messages.stream(
        model="taskroute/coding", max_tokens=200,
        messages=[{"role": "user", "content": "write a hello world in python"}],
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
    assert final.content[0].type == "text" and final.content[0].text
    assert final.model == "openai/gpt-4.1"


async def test_stream_headers_carry_the_route(gateway: RunningGateway) -> None:
    async with client(gateway) as c, c.messages.with_streaming_response.create(
        model="auto", max_tokens=100, stream=True,
        messages=[{"role": "user", "content": "hi"}],
    ) as response:
        assert response.headers["x-taskroute-tier"] == "fast"
        lines = [line async for line in response.iter_lines() if line]
    assert lines[0] == "event: message_start"


async def test_tool_use(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        message = await c.messages.create(
            model="auto", max_tokens=200,
            tools=[{"name": "get_weather", "description": "weather for a city",
                    "input_schema": {"type": "object",
                                     "properties": {"city": {"type": "string"}}}}],
            messages=[{"role": "user", "content": "What's the weather in Paris?"}])
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather"


@pytest.mark.parametrize(("body", "status", "kind"), [
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}, 400,
     "invalid_request_error"),
    ({"model": "auto", "max_tokens": 10, "messages": "nope"}, 400, "invalid_request_error"),
    ({"model": "no/such-model", "max_tokens": 10,
      "messages": [{"role": "user", "content": "x"}]}, 404, "not_found_error"),
])
async def test_errors_in_anthropic_shape(
    gateway: RunningGateway, body: dict[str, object], status: int, kind: str
) -> None:
    got, _, raw = await gateway.request("POST", "/v1/messages", json=body)
    assert got == status
    error = json.loads(raw)
    assert error["type"] == "error" and error["error"]["type"] == kind


async def test_sdk_raises_its_own_error_types(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(anthropic.NotFoundError):
            await c.messages.create(model="nope/nope", max_tokens=10,
                                    messages=[{"role": "user", "content": "x"}])
