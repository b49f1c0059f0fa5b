"""The caller's deadline and an all-429 chain, in both APIs' error JSON."""

from __future__ import annotations

import time
from dataclasses import replace

import msgspec
import pytest

from taskroute.policy.model import Policy

from .conftest import StartGateway

MODELS = ("gpt-4.1-mini", "claude-haiku-4-5", "gpt-4.1", "claude-sonnet-4-5",
          "claude-opus-4-5", "gpt-5")
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def quick(policy: Policy) -> Policy:
    calling = replace(policy.calling, connect_timeout_s=1.0, first_token_timeout_s=2.0,
                      total_timeout_s=5.0, backoff_s=0.005, backoff_max_s=0.04)
    return replace(policy, calling=calling)


def body(api: str, **extra: object) -> dict[str, object]:
    chat: dict[str, object] = {"model": "auto",
                               "messages": [{"role": "user", "content": "say hello"}], **extra}
    if api == "anthropic":
        chat["max_tokens"] = 50
    return chat


def error_type(api: str, payload: dict[str, object]) -> str:
    error = payload["error"]
    assert isinstance(error, dict)
    if api == "anthropic":
        assert payload["type"] == "error"
    return str(error["type"])


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_the_deadline_header_bounds_a_hung_chain_with_a_504(
    start_gateway: StartGateway, api: str
) -> None:
    gateway = await start_gateway(edit_policy=quick)
    for model in MODELS:
        gateway.upstream.answer_slowly(model, 10.0)
    started = time.monotonic()
    status, _, raw = await gateway.request("POST", PATHS[api], json=body(api),
                                           headers={"X-Taskroute-Deadline": "0.5"})
    took = time.monotonic() - started
    assert status == 504 and took < 1.5, (status, took)  # 12 tries x 2 s without it
    payload = msgspec.json.decode(raw)
    assert error_type(api, payload) == "timeout_error"
    assert "deadline of 0.5s" in payload["error"]["message"]
    [row] = await gateway.log_rows()
    assert (row["http_status"], row["status"]) == (504, "error")


async def test_metadata_deadline_is_honoured(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(edit_policy=quick)
    for model in MODELS:
        gateway.upstream.answer_slowly(model, 10.0)
    status, _, raw = await gateway.request(
        "POST", PATHS["openai"], json=body("openai", metadata={"deadline_s": "0.4"}))
    assert status == 504 and b"deadline of 0.4s" in raw


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("given", ["0", "-3", "soon", "nan"])
async def test_a_deadline_that_is_not_a_positive_number_is_a_400(
    start_gateway: StartGateway, api: str, given: str
) -> None:
    gateway = await start_gateway(edit_policy=quick)
    status, _, raw = await gateway.request("POST", PATHS[api], json=body(api),
                                           headers={"X-Taskroute-Deadline": given})
    assert status == 400, raw
    assert error_type(api, msgspec.json.decode(raw)) == "invalid_request_error"
    assert sum(gateway.upstream.requests.values()) == 0


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_every_deployment_rate_limited_is_a_429_with_the_soonest_retry_after(
    start_gateway: StartGateway, api: str, stream: bool
) -> None:
    gateway = await start_gateway(edit_policy=quick)
    for model, after in zip(MODELS, (40, 25, 9, 30, 12, 60), strict=True):
        gateway.upstream.fail(model, 429, retry_after=after)
    started = time.monotonic()
    status, headers, raw = await gateway.request("POST", PATHS[api],
                                                 json=body(api, stream=stream))
    assert time.monotonic() - started < 1.0  # none of those waits is taken
    assert status == 429 and headers["Retry-After"] == "9", (status, raw)
    assert error_type(api, msgspec.json.decode(raw)) == "rate_limit_error"
    [row] = await gateway.log_rows()
    assert (row["http_status"], row["status"]) == (429, "error")
