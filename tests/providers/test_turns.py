"""Anthropic, Bedrock and Gemini want user and assistant turns to alternate: consecutive
messages of one role (a user's two messages, a tool result after a user's text) are one turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from taskroute.providers.anthropic_format import to_messages_request
from taskroute.providers.bedrock_format import to_converse_request
from taskroute.providers.gemini_format import to_gemini_request
from taskroute.request import ChatRequest

REQUEST = ChatRequest.from_dict({"messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "first"},
    {"role": "user", "content": "second"},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": "third"},
]})


def anthropic(request: ChatRequest) -> list[Any]:
    return list(to_messages_request(request, "m", default_max_tokens=64)["messages"])


def bedrock(request: ChatRequest) -> list[Any]:
    return list(to_converse_request(request)["messages"])


def gemini(request: ChatRequest) -> list[Any]:
    return list(to_gemini_request(request)["contents"])


@pytest.mark.parametrize(("convert", "field", "assistant"), [
    (anthropic, "content", "assistant"), (bedrock, "content", "assistant"),
    (gemini, "parts", "model"),
])
def test_consecutive_turns_of_one_role_are_merged(
    convert: Callable[[ChatRequest], list[Any]], field: str, assistant: str,
) -> None:
    turns = convert(REQUEST)
    assert [t["role"] for t in turns] == ["user", assistant, "user"]
    assert [part["text"] for part in turns[0][field]] == ["first", "second"]
    assert [part["text"] for part in turns[2][field]] == ["third"]
