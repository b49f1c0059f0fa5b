"""Requests the gateway refuses with a 400 in the API's own error JSON: output limits that are
no answer or overflow, more than one choice, a user turn with no content."""

from __future__ import annotations

import json

import pytest

from tests.gateway.conftest import RunningGateway
from tests.gateway.test_errors_and_limits import HELLO, error_of, post

ANTHROPIC = {"model": "auto", "max_tokens": 64,
             "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("field", "value"), [
    ("max_tokens", 0), ("max_tokens", -1), ("max_tokens", 2**70),
    ("max_completion_tokens", 0), ("n", 100), ("n", 0),
])
async def test_counts_out_of_range_are_400(
    gateway: RunningGateway, field: str, value: int
) -> None:
    status, _, body = await post(gateway, {**HELLO, field: value})
    assert status == 400
    error = error_of(body)
    assert error["type"] == "invalid_request_error" and error["param"] == field
    assert sum(gateway.upstream.requests.values()) == 0


async def test_n_of_one_and_a_sane_max_tokens_are_served(gateway: RunningGateway) -> None:
    assert (await post(gateway, {**HELLO, "n": 1, "max_tokens": 50}))[0] == 200


async def test_anthropic_max_tokens_over_the_limit_is_400(gateway: RunningGateway) -> None:
    status, _, raw = await gateway.request("POST", "/v1/messages",
                                           json={**ANTHROPIC, "max_tokens": 2**70})
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("content", [None, "", "   "])
async def test_a_user_message_without_content_is_400(
    gateway: RunningGateway, content: str | None
) -> None:
    turn = {"role": "user", "content": content}
    status, _, body = await post(gateway, {"model": "auto", "messages": [turn]})
    assert status == 400 and error_of(body)["param"] == "messages[0].content"
    if content is not None:
        status, _, raw = await gateway.request("POST", "/v1/messages", json={
            **ANTHROPIC, "messages": [turn]})
        error = json.loads(raw)["error"]
        assert status == 400 and error["type"] == "invalid_request_error"
        assert "messages.0.content" in error["message"]
    assert sum(gateway.upstream.requests.values()) == 0
