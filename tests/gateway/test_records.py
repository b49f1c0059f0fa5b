"""Records that say what happened: who answered, what the client got, refusals, hang-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import aiohttp
import pytest

from taskroute.exceptions import Secret
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.model import Policy, RefusalHold
from tests.gateway.conftest import RunningGateway, StartGateway
from tests.gateway.test_errors_and_limits import UPSTREAM_NAMES, fast_failing, post

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


async def _stream_lines(gw: RunningGateway, body: object) -> tuple[dict[str, str], bytes]:
    async with aiohttp.ClientSession() as client, client.post(
        gw.url + "/v1/chat/completions", json=body
    ) as resp:
        return dict(resp.headers), await resp.read()


@pytest.mark.parametrize("stream", [False, True])
async def test_failover_names_the_deployment_that_answered(
    gateway: RunningGateway, stream: bool
) -> None:
    gateway.upstream.fail("gpt-4.1-mini", 503)
    if stream:
        headers, raw = await _stream_lines(gateway, {**HELLO, "stream": True})
        first = json.loads(raw.split(b"\n\n")[0].removeprefix(b"data: "))
        body_model = first["model"]
    else:
        status, headers, body = await post(gateway, HELLO)
        assert status == 200
        body_model = body["model"]
    assert headers["X-Taskroute-Model"] == "anthropic/claude-haiku-4-5"
    assert headers["X-Taskroute-Stood-In-For"] == "openai/gpt-4.1-mini"
    assert headers["X-Taskroute-Escalated"] == "false"
    assert body_model == "anthropic/claude-haiku-4-5"
    rows = await gateway.log_rows()
    assert rows[0]["answered_by"] == "anthropic/claude-haiku-4-5"
    assert rows[0]["escalated"] == 0


async def test_the_log_status_is_what_the_client_got(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=fast_failing)
    for name in UPSTREAM_NAMES:
        gw.upstream.answer_slowly(name, 2.0)
    status, headers, _ = await post(gw, HELLO)
    assert status == 504
    rows = await gw.log_rows()
    assert rows[0]["http_status"] == 504
    assert headers["X-Taskroute-Request-Id"] == rows[0]["request_id"]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}


@pytest.mark.parametrize("hold", [True, False], ids=["held", "not held"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool calls"])
async def test_a_streamed_answer_is_logged_as_the_client_got_it(
    start_gateway: StartGateway, hold: bool, tools: bool
) -> None:
    """The logged answer is the text the client was streamed, tool calls' arguments too, with
    the refusal hold on (the record goes on from the tally the held opening was judged off)
    and off; the gateway's own edits to the chunks on their way out change nothing."""
    def logging_content(policy: Policy) -> Policy:
        calling = dataclasses.replace(policy.calling,
                                      refusal_hold=RefusalHold() if hold else RefusalHold(0))
        return dataclasses.replace(policy, log_content=True, calling=calling)

    gw = await start_gateway(edit_policy=logging_content)
    long = "tell me about " + " ".join(f"word{i}" for i in range(20))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": long}],
            **({"tools": [WEATHER]} if tools else {})}
    async with aiohttp.ClientSession() as client, client.post(
        gw.url + "/v1/chat/completions", json=body, headers={"X-Taskroute-Task": "chat"},
    ) as resp:
        assert resp.status == 200
        raw = await resp.read()
    sent, calls = [], 0
    for line in raw.split(b"\n\n"):
        if line.startswith(b"data: {"):
            for choice in json.loads(line.removeprefix(b"data: "))["choices"]:
                sent.append(choice["delta"].get("content") or "")
                for part in choice["delta"].get("tool_calls") or ():
                    calls += 1
                    sent.append(part["function"].get("arguments") or "")
    assert bool(calls) == tools and len(sent) > 10
    (row,) = await gw.log_rows()
    assert (row["task"], row["status"]) == ("chat", "ok")
    assert row["answer"] == "".join(sent)


async def _refused_rows(gw: RunningGateway) -> list[dict[str, object]]:
    return [dict(r) for r in await gw.log_rows("SELECT * FROM refused ORDER BY ts")]


async def test_refused_requests_are_logged_with_their_reason_and_id(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(max_body_bytes=2048, api_keys=(Secret("sk-a"),),
                                             rate_limit_rpm=2))
    key = {"Authorization": "Bearer sk-a"}
    got = [
        await post(gw, HELLO),                                                    # 401
        await post(gw, {"messages": []}, headers=key),                           # 400
        await post(gw, {**HELLO, "model": "acme/gpt-99"}, headers=key),          # 404
        await post(gw, HELLO, headers=key),                                       # 429
    ]
    assert [g[0] for g in got] == [401, 400, 404, 429]
    rows = await _refused_rows(gw)
    assert [r["http_status"] for r in rows] == [401, 400, 404, 429]
    assert [r["request_id"] for r in rows] == [g[1]["X-Taskroute-Request-Id"] for g in got]
    assert rows[2]["model"] == "acme/gpt-99" and rows[2]["type"] == "not_found_error"
    assert "acme/gpt-99" in str(rows[2]["reason"])
    assert rows[2]["api_key_id"] and rows[3]["api_key_id"] == rows[2]["api_key_id"]
    assert all(r["prompt"] is None for r in rows)     # the policy does not log content
    assert await gw.log_rows() == []                  # not routed requests
    stats = await gw.store.route_stats(since_s=None)
    assert stats["refused"] == {"requests": 4,
                                "by_status": {"400": 1, "401": 1, "404": 1, "429": 1}}
    assert stats["total"]["requests"] == 0


async def test_a_body_over_the_limit_is_logged_as_refused(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(max_body_bytes=2048))
    status, headers, _ = await post(gw, {"messages": [{"role": "user", "content": "x" * 5000}]})
    assert status == 413 and headers["X-Taskroute-Request-Id"].startswith("req-")
    assert [r["http_status"] for r in await _refused_rows(gw)] == [413]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_that_hangs_up_is_logged_499_and_cancels_the_upstream_call(
    gateway: RunningGateway, stream: bool
) -> None:
    from tests.calling.support import eventually

    gateway.upstream.answer_slowly("gpt-4.1-mini", 5.0)
    timeout = aiohttp.ClientTimeout(total=0.5)
    with pytest.raises(asyncio.TimeoutError):
        async with aiohttp.ClientSession(timeout=timeout) as client, client.post(
            gateway.url + "/v1/chat/completions", json={**HELLO, "stream": stream}
        ) as resp:
            await resp.read()
    assert await eventually(lambda: gateway.upstream.cancelled["gpt-4.1-mini"] == 1)
    await asyncio.sleep(0.1)
    rows = await gateway.log_rows()
    assert len(rows) == 1
    assert rows[0]["http_status"] == 499 and rows[0]["status"] == "error"
    assert rows[0]["error"] == "the client closed the connection"
    assert gateway.upstream.completed["gpt-4.1-mini"] == 0


async def test_a_class_named_in_the_header_says_so(gateway: RunningGateway) -> None:
    status, _, body = await post(gateway, HELLO, headers={"X-Taskroute-Task": "coding",
                                                          "X-Taskroute-Explain": "1"})
    assert status == 200
    explained = body["taskroute"]
    assert isinstance(explained, dict)
    assert "The caller named the task coding in the X-Taskroute-Task header." in (
        explained["reasons"])


async def test_a_budget_refusal_is_logged_and_content_only_when_the_policy_logs_it(
    start_gateway: StartGateway, tmp_path: Path,
) -> None:
    from taskroute.demo.policy import simulated_policy_text
    from taskroute.policy.loader import default_policy_text, load_policy

    upstream_url = (await start_gateway()).upstream.url
    text = simulated_policy_text(default_policy_text(), upstream_url)
    path = tmp_path / "policy.yaml"
    text = text.replace("log content: false", "log content: true")
    path.write_text(text + "budgets:\n  per day: 0\n", encoding="utf-8")
    gw = await start_gateway(edit_policy=lambda _: load_policy(path))
    status, headers, _ = await post(gw, {**HELLO, "messages": [
        {"role": "user", "content": "what is the capital of Peru"}]})
    assert status == 429
    (row,) = await _refused_rows(gw)
    assert row["http_status"] == 429 and "daily budget" in str(row["reason"])
    assert row["type"] == "rate_limit_error"
    assert row["prompt"] == "what is the capital of Peru"
    assert row["request_id"] == headers["X-Taskroute-Request-Id"]


async def test_a_client_that_hangs_up_mid_stream_is_logged_499_and_cancels_upstream(
    gateway: RunningGateway,
) -> None:
    from taskroute.providers.simulated import ModelProfile
    from tests.calling.support import eventually

    gateway.upstream.set_profile("gpt-4.1-mini", ModelProfile(first_token_s=0.01,
                                                              tokens_per_s=4))
    long = "tell me about " + " ".join(f"word{i}" for i in range(30))
    async with aiohttp.ClientSession() as client, client.post(
        gateway.url + "/v1/chat/completions",
        json={**HELLO, "stream": True, "messages": [{"role": "user", "content": long}]},
    ) as resp:
        assert resp.status == 200
        await resp.content.readline()   # the first event is in: hang up
    assert await eventually(lambda: gateway.upstream.cancelled["gpt-4.1-mini"] == 1)
    await asyncio.sleep(0.2)
    (row,) = await gateway.log_rows()
    assert (row["http_status"], row["status"]) == (499, "error")
    assert row["error"] == "the client closed the connection"


async def test_a_client_that_leaves_after_its_last_byte_did_not_hang_up(
    gateway: RunningGateway,
) -> None:
    for _ in range(5):
        async with aiohttp.ClientSession() as client, client.post(
            gateway.url + "/v1/chat/completions", json={**HELLO, "stream": True}
        ) as resp:
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    break                      # and close at once
    await asyncio.sleep(0.2)
    rows = await gateway.log_rows()
    assert [(r["http_status"], r["status"]) for r in rows] == [(200, "ok")] * 5
