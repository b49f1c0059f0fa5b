from __future__ import annotations

import pytest

from taskroute.exceptions import InvalidRequest
from taskroute.request import ChatRequest


def test_unknown_fields_pass_through_untouched() -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7,
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
    }
    request = ChatRequest.from_dict(body)
    assert request.extra == {
        "seed": 7, "logit_bias": {"50256": -100}, "stream_options": {"include_usage": True},
    }
    assert request.to_dict()["seed"] == 7
    assert request.to_dict()["messages"] == [{"role": "user", "content": "hi"}]


def test_content_parts_are_read_as_text() -> None:
    request = ChatRequest.from_dict({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in"},
            {"type": "image_url", "image_url": {"url": "data:,"}},
            {"type": "text", "text": "this picture?"},
        ]},
    ]})
    assert request.last_user_text == "What is in\nthis picture?"
    assert request.system_text == "Be brief."


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}],
          "response_format": {"type": "yaml"}}, "response_format.type"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        ChatRequest.from_dict(body)
    assert info.value.param == param


def test_format_kind_tells_strict_schema_apart() -> None:
    def kind(fmt: dict[str, object] | None) -> str:
        body: dict[str, object] = {"messages": [{"role": "user", "content": "x"}]}
        if fmt is not None:
            body["response_format"] = fmt
        return ChatRequest.from_dict(body).format_kind

    schema = {"name": "s", "schema": {"type": "object"}}
    assert kind(None) == "text"
    assert kind({"type": "json_object"}) == "json_object"
    assert kind({"type": "json_schema", "json_schema": schema}) == "json_schema"
    assert kind({"type": "json_schema", "json_schema": {**schema, "strict": True}}) == (
        "strict_schema"
    )


def test_metadata_numbers_become_strings() -> None:
    request = ChatRequest.from_dict({
        "messages": [{"role": "user", "content": "x"}],
        "metadata": {"retrieval_score": 0.25, "vip": True},
    })
    assert request.metadata == {"retrieval_score": "0.25", "vip": "true"}


def test_max_completion_tokens_is_read_as_max_tokens() -> None:
    request = ChatRequest.from_dict({
        "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 64,
    })
    assert request.max_tokens == 64


def test_malformed_json_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        ChatRequest.from_json(b'{"messages": [')
