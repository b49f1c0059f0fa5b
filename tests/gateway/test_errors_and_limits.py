"""Errors in OpenAI's shape for each status, auth, per-key rate limits and the body limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import openai
import pytest

from taskroute.exceptions import Secret
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.model import Policy
from tests.gateway.conftest import RunningGateway, StartGateway

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
UPSTREAM_NAMES = ("gpt-4.1-mini", "claude-haiku-4-5", "gpt-4.1", "claude-sonnet-4-5",
                  "claude-opus-4-5", "gpt-5")


def fast_failing(policy: Policy) -> Policy:
    calling = replace(policy.calling, retries=0, first_token_timeout_s=0.3, total_timeout_s=1.0)
    return replace(policy, calling=calling)


async def post(gw: RunningGateway, body: object, **kwargs: object) -> tuple[int, dict[str, str],
                                                                           dict[str, object]]:
    status, headers, raw = await gw.request(
        "POST", "/v1/chat/completions", data=json.dumps(body), **kwargs)
    return status, headers, json.loads(raw)


def error_of(body: dict[str, object]) -> dict[str, object]:
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) >= {"message", "type", "param", "code"}
    assert "Traceback" not in str(error["message"])
    return error


@pytest.mark.parametrize(("raw", "param"), [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b"", None),
    (json.dumps({"model": "auto"}).encode(), "messages"),
    (json.dumps({"messages": []}).encode(), "messages"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), "messages[0].role"),
    (json.dumps({**HELLO, "temperature": "hot"}).encode(), "temperature"),
])
async def test_malformed_requests_are_400_with_the_param(
    gateway: RunningGateway, raw: bytes, param: str | None
) -> None:
    status, _, body = await gateway.request("POST", "/v1/chat/completions", data=raw)
    assert status == 400
    error = error_of(json.loads(body))
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_unknown_task_class_is_400(gateway: RunningGateway) -> None:
    status, _, body = await post(gateway, {**HELLO, "model": "taskroute/astrology"})
    assert status == 400
    assert "astrology" in str(error_of(body)["message"])


async def test_unknown_model_is_404(gateway: RunningGateway) -> None:
    status, _, body = await post(gateway, {**HELLO, "model": "acme/gpt-99"})
    assert status == 404
    assert error_of(body)["code"] == "model_not_found"


async def test_unknown_path_and_method_in_openai_shape(gateway: RunningGateway) -> None:
    status, _, body = await gateway.request("GET", "/v1/nothing-here")
    assert status == 404 and error_of(json.loads(body))["type"] == "not_found_error"
    status, _, body = await gateway.request("GET", "/v1/chat/completions")
    assert status == 405 and "error" in json.loads(body)


async def test_body_over_the_limit_is_413(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(max_body_bytes=2048))
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    status, _, body = await post(gw, big)
    assert status == 413
    assert error_of(body)["code"] == "request_too_large"
    assert (await post(gw, HELLO))[0] == 200


async def test_body_over_the_limit_without_content_length_is_413(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(max_body_bytes=2048))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    status, _, body = await gw.request("POST", "/v1/chat/completions", data=chunks())
    assert b"request_too_large" in body
    assert status == 413


async def test_every_upstream_failing_is_502_with_the_attempts(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=fast_failing)
    for name in UPSTREAM_NAMES:
        gw.upstream.fail(name, 500)
    status, _, body = await post(gw, HELLO)
    assert status == 502
    error = error_of(body)
    assert error["type"] == "upstream_error" and error["code"] == "chain_exhausted"
    attempts = error["attempts"]
    assert isinstance(attempts, list) and len(attempts) >= 3
    assert {a["status"] for a in attempts} == {"error"}
    rows = await gw.log_rows()
    assert len(rows) == 1 and rows[0]["http_status"] == 502 and rows[0]["status"] == "error"


async def test_every_upstream_timing_out_is_504(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=fast_failing)
    for name in UPSTREAM_NAMES:
        gw.upstream.answer_slowly(name, 2.0)
    status, _, body = await post(gw, HELLO)
    assert status == 504
    assert error_of(body)["type"] == "timeout_error"


async def test_upstream_key_never_reaches_the_caller(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=fast_failing)
    for name in UPSTREAM_NAMES:
        gw.upstream.fail(name, 401)
    status, _, raw = await gw.request("POST", "/v1/chat/completions", json=HELLO)
    assert status == 502
    assert b"sk-" not in raw and b"Traceback" not in raw


async def test_keys_are_required_when_configured(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(api_keys=(Secret("sk-gw-alpha"),
                                                       Secret("sk-gw-beta"))))
    status, _, body = await post(gw, HELLO)
    assert status == 401 and error_of(body)["type"] == "authentication_error"
    status, _, body = await post(gw, HELLO, headers={"Authorization": "Bearer sk-gw-wrong"})
    assert status == 401 and "sk-gw-wrong" not in json.dumps(body)
    for key in ("sk-gw-alpha", "sk-gw-beta"):
        assert (await post(gw, HELLO, headers={"Authorization": f"Bearer {key}"}))[0] == 200
    assert (await post(gw, HELLO, headers={"x-api-key": "sk-gw-beta"}))[0] == 200
    rows = await gw.log_rows()
    key_ids = {r["api_key_id"] for r in rows}
    assert len(key_ids) == 2 and all(k.startswith("key-") for k in key_ids)
    assert not any("sk-gw" in str(tuple(r)) for r in rows)


async def test_openai_sdk_sees_authentication_error(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(api_keys=(Secret("sk-gw-alpha"),)))
    async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="auto", messages=[
                {"role": "user", "content": "hi"}])
    async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="sk-gw-alpha",
                                  max_retries=0) as c:
        await c.chat.completions.create(model="auto", messages=[
            {"role": "user", "content": "hi"}])


async def test_rate_limit_per_key_answers_429_with_retry_after(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(
        api_keys=(Secret("sk-a"), Secret("sk-b")), rate_limit_rpm=3))
    a = {"Authorization": "Bearer sk-a"}
    for _ in range(3):
        assert (await post(gw, HELLO, headers=a))[0] == 200
    status, headers, body = await post(gw, HELLO, headers=a)
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert error_of(body)["code"] == "rate_limit_exceeded"
    assert (await post(gw, HELLO, headers={"Authorization": "Bearer sk-b"}))[0] == 200
    assert len(await gw.log_rows()) == 4  # refused requests never reach the router


async def test_openai_sdk_sees_rate_limit_error(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(rate_limit_rpm=1))
    async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
        await c.chat.completions.create(model="auto", messages=[
            {"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError):
            await c.chat.completions.create(model="auto", messages=[
                {"role": "user", "content": "hi"}])
