"""A reasoning effort reaches the models that take it, in each vendor's form, and no other."""

from __future__ import annotations

from typing import Any

from taskroute.providers.anthropic_format import to_messages_request
from taskroute.providers.vendor_fields import openai_body
from taskroute.request import ChatRequest


def body(**fields: Any) -> dict[str, Any]:
    return ChatRequest.from_prompt("hi", reasoning_effort="low", **fields).to_dict()


def test_openai_itself_gets_the_effort_only_for_its_reasoning_models() -> None:
    assert openai_body(body(), model="gpt-5-mini")["reasoning_effort"] == "low"
    assert openai_body(body(), model="o4-mini")["reasoning_effort"] == "low"
    assert "reasoning_effort" not in openai_body(body(), model="gpt-4.1")


def test_an_openai_compatible_server_gets_it_as_sent() -> None:
    sent = openai_body(body(), openai_itself=False, model="llama-3")
    assert sent["reasoning_effort"] == "low"


def test_anthropic_gets_extended_thinking_with_room_for_it() -> None:
    request = ChatRequest.from_prompt("hi", reasoning_effort="high", max_tokens=100,
                                      temperature=0.2)
    sent = to_messages_request(request, "claude-sonnet-4-5", default_max_tokens=4096)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] > 4096 and "temperature" not in sent


def test_anthropic_keeps_a_thinking_setting_the_caller_gave() -> None:
    request = ChatRequest.from_prompt("hi", reasoning_effort="high",
                                      thinking={"type": "enabled", "budget_tokens": 2000})
    sent = to_messages_request(request, "claude-sonnet-4-5", default_max_tokens=4096)
    assert sent["thinking"]["budget_tokens"] == 2000
