"""OpenAI ⇄ Anthropic conversions, both directions, for requests, responses and streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskroute.exceptions import UpstreamStatus
from taskroute.providers.anthropic_format import (
    JSON_INSTRUCTION,
    SCHEMA_INSTRUCTION,
    from_messages_response,
    to_messages_request,
)
from taskroute.providers.anthropic_inbound import from_messages_request, to_messages_response
from taskroute.providers.anthropic_stream import AnthropicEvents, OpenAIChunks
from taskroute.request import ChatRequest

TOOL = {"type": "function", "function": {"name": "lookup", "description": "Find a fact",
                                         "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "toolu_9", "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'}}


def test_request_to_messages_maps_every_part() -> None:
    request = ChatRequest.from_dict({
        "messages": [
            {"role": "system", "content": "Be exact."},
            {"role": "developer", "content": "Cite."},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": "checking", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "toolu_9", "content": "found"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "temperature": 1.6, "stop": "END", "max_tokens": 50, "user": "u1",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
    })
    body = to_messages_request(request, "claude-x")
    assert body["model"] == "claude-x"
    assert body["system"] == f"Be exact.\n\nCite.\n\n{JSON_INSTRUCTION}"
    assert body["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "checking"},
            {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "found"},
            {"type": "text", "text": "thanks"}]},
    ]
    assert body["tools"] == [{"name": "lookup", "description": "Find a fact",
                              "input_schema": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "tool", "name": "lookup",
                                   "disable_parallel_tool_use": True}
    assert body["temperature"] == 1.0
    assert body["stop_sequences"] == ["END"]
    assert body["max_tokens"] == 50
    assert body["metadata"] == {"user_id": "u1"}


def test_a_json_schema_rides_in_the_system_prompt_on_one_line() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = ChatRequest.from_prompt("count", response_format={
        "type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    system = to_messages_request(request, "m")["system"]
    line = system.splitlines()[-1]
    assert json.loads(line.removeprefix(SCHEMA_INSTRUCTION)) == schema
    assert "max_tokens" in to_messages_request(request, "m")


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("stop_sequence", "stop"),
])
def test_response_from_messages(stop_reason: str, finish: str) -> None:
    data = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "tool_use", "id": "toolu_1", "name": "lookup",
                         "input": {"q": 1}}],
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 5}}
    response = from_messages_response(data)
    assert response.text == "Hi"
    assert response.finish_reason == finish
    assert response.tool_calls == [{"id": "toolu_1", "type": "function", "function": {
        "name": "lookup", "arguments": '{"q": 1}'}}]
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (15, 4)


def test_messages_request_to_openai_and_back_to_messages() -> None:
    body: dict[str, Any] = {
        "model": "taskroute/auto", "max_tokens": 100, "system": "Be exact.",
        "messages": [
            {"role": "user", "content": "find x"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "x"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_9",
                 "content": [{"type": "text", "text": "found"}]}]},
        ],
        "tools": [{"name": "lookup", "description": "Find a fact",
                   "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"}, "stop_sequences": ["END"], "temperature": 0.2,
        "metadata": {"user_id": "u1"}, "stream": True,
    }
    request = from_messages_request(body)
    assert request.system_text == "Be exact."
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "tool"]
    assert request.messages[2].tool_calls == [CALL]
    assert request.messages[3].tool_call_id == "toolu_9"
    assert request.messages[3].content == "found"
    assert request.tool_choice == "required"
    assert request.extra["stop"] == ["END"]
    assert request.stream is True
    assert request.user == "u1"
    again = to_messages_request(request, "claude-x")
    assert again["system"] == "Be exact."
    assert again["messages"][1:] == [
        {"role": "assistant", "content": body["messages"][1]["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9",
                                      "content": "found"}]},
    ]
    assert again["tool_choice"] == {"type": "any"}


def test_chat_response_to_messages_response() -> None:
    data = {"id": "msg_1", "model": "claude-x", "stop_reason": "tool_use",
            "content": [{"type": "text", "text": "Let me look."},
                        {"type": "tool_use", "id": "toolu_1", "name": "lookup",
                         "input": {"q": 1}}],
            "usage": {"input_tokens": 10, "output_tokens": 4}}
    back = to_messages_response(from_messages_response(data))
    assert back["type"] == "message"
    assert back["content"] == data["content"]
    assert back["stop_reason"] == "tool_use"
    assert back["usage"] == {"input_tokens": 10, "output_tokens": 4,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert back["id"] == "msg_1"


ANTHROPIC_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [], "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Let me "}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "look."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": '{"q":'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": " 1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                       "usage": {"output_tokens": 9}}),
    ("message_stop", {"type": "message_stop"}),
]


def test_anthropic_stream_to_openai_chunks() -> None:
    translator = OpenAIChunks("claude-x")
    chunks = [c for kind, data in ANTHROPIC_STREAM for c in translator.feed(kind, data)]
    assert translator.done
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Let me look."
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get(
        "tool_calls", [])]
    assert calls[0] == {"index": 0, "id": "toolu_1", "type": "function",
                        "function": {"name": "lookup", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == '{"q": 1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 9,
                                   "total_tokens": 21, "cache_creation_input_tokens": 0,
                                   "prompt_tokens_details": {"cached_tokens": 0}}


def test_an_error_event_in_the_stream_raises_with_its_status() -> None:
    translator = OpenAIChunks("claude-x")
    with pytest.raises(UpstreamStatus) as caught:
        translator.feed("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}})
    assert caught.value.status == 529


def test_openai_chunks_to_anthropic_events_round_trip() -> None:
    translator = OpenAIChunks("claude-x")
    chunks = [c for kind, data in ANTHROPIC_STREAM for c in translator.feed(kind, data)]
    events = AnthropicEvents("claude-x", "msg_1")
    produced = [e for chunk in chunks for e in events.feed(chunk)] + events.finish()
    expected = [(k, d) for k, d in ANTHROPIC_STREAM if k != "ping"]
    assert [k for k, _ in produced] == [k for k, _ in expected]
    assert produced[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [d["delta"] for k, d in produced if k == "content_block_delta"]
    assert deltas == [d["delta"] for k, d in expected if k == "content_block_delta"]
    assert produced[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert produced[-2][1]["usage"] == {"input_tokens": 12, "output_tokens": 9,
                                        "cache_creation_input_tokens": 0,
                                        "cache_read_input_tokens": 0}


def test_an_empty_openai_stream_still_makes_a_well_formed_message() -> None:
    events = AnthropicEvents("m", "msg_1").finish()
    assert [k for k, _ in events] == ["message_start", "message_delta", "message_stop"]
