"""/v1/chat/completions driven by the official `openai` SDK: shapes, streaming, tools, JSON
schema, routing by the `model` field, route headers and explain."""

from __future__ import annotations

import json

import openai
import pytest

from tests.gateway.conftest import RunningGateway


def client(
    gw: RunningGateway, api_key: str = "none", headers: dict[str, str] | None = None
) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key=api_key, max_retries=0, timeout=10,
                              default_headers=headers)


async def test_answers_in_openai_shape_with_the_model_that_answered(
    gateway: RunningGateway,
) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hello there, how are you?"}])
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    headers = raw.headers
    assert completion.model == headers["x-taskroute-model"] == "openai/gpt-4.1-mini"
    assert headers["x-taskroute-task"] == "chat"
    assert headers["x-taskroute-tier"] == "fast"
    assert headers["x-taskroute-escalated"] == "false"
    assert float(headers["x-taskroute-cost-usd"]) > 0
    assert headers["x-taskroute-request-id"].startswith("req-")


async def test_logs_one_row_per_request(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        ids = []
        for i in range(3):
            raw = await c.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": f"hi number {i}"}])
            ids.append(raw.headers["x-taskroute-request-id"])
    rows = await gateway.log_rows()
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert {r["api"] for r in rows} == {"openai"}
    assert all(r["http_status"] == 200 and r["status"] == "ok" for r in rows)
    attempts = await gateway.log_rows("SELECT * FROM attempts")
    assert len(attempts) == 3


async def test_task_class_in_the_model_name_routes_to_its_tier(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="taskroute/reasoning",
            messages=[{"role": "user", "content": "Plan a three-city trip, step by step."}])
    assert raw.headers["x-taskroute-task"] == "reasoning"
    assert raw.headers["x-taskroute-tier"] in ("strong", "balanced")


async def test_task_header_names_the_class(gateway: RunningGateway) -> None:
    async with client(gateway, headers={"X-Taskroute-Task": "coding"}) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-taskroute-task"] == "coding"
    assert raw.headers["x-taskroute-tier"] == "balanced"


async def test_concrete_model_bypasses_routing(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="anthropic/claude-opus-4-5",
            messages=[{"role": "user", "content": "hello"}])
    assert raw.parse().model == "anthropic/claude-opus-4-5"
    assert raw.headers["x-taskroute-tier"] == "strong"
    rows = await gateway.log_rows()
    assert rows[0]["routed"] == 0


async def test_explain_header_adds_the_reasons(gateway: RunningGateway) -> None:
    async with client(gateway, headers={"X-Taskroute-Explain": "1"}) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "summarize this: a b c"}])
    body = json.loads(raw.content)
    route = body["taskroute"]
    assert route["task"] == "summarization"
    assert any("rule" in reason for reason in route["reasons"])
    assert route["attempts"][0]["status"] == "ok"


async def test_streams_sse_with_the_route_in_the_headers(gateway: RunningGateway) -> None:
    async with client(gateway) as c, c.chat.completions.with_streaming_response.create(
        model="auto", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "tell me a short joke"}],
    ) as response:
        assert response.headers["x-taskroute-model"] == "openai/gpt-4.1-mini"
        assert response.headers["x-taskroute-task"] == "chat"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert {ch["model"] for ch in chunks} == {"openai/gpt-4.1-mini"}
    text = "".join((ch["choices"][0]["delta"].get("content") or "")
                   for ch in chunks if ch["choices"])
    assert text
    assert chunks[-1]["usage"]["total_tokens"] > 0
    rows = await gateway.log_rows()
    assert len(rows) == 1 and rows[0]["status"] == "ok"


async def test_stream_through_the_sdk_iterator(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": "hi"}])
        pieces = [chunk async for chunk in stream]
    assert pieces[-1].choices[0].finish_reason == "stop"
    assert all(p.usage is None for p in pieces)  # not asked for: not sent


async def test_tools_round_trip(gateway: RunningGateway) -> None:
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", tools=tools,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "What's the weather in Paris?"}])
    completion = raw.parse()
    assert raw.headers["x-taskroute-task"] == "tool_use"
    call = completion.choices[0].message.tool_calls
    assert call and call[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_json_schema_response_format(gateway: RunningGateway) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    async with client(gateway) as c:
        completion = await c.chat.completions.create(
            model="auto",
            response_format={"type": "json_schema", "json_schema": {
                "name": "person", "schema": schema, "strict": True}},
            messages=[{"role": "user", "content": "Extract: Ada Lovelace, 36 years old."}])
    data = json.loads(completion.choices[0].message.content or "")
    assert set(data) == {"name", "age"}


@pytest.mark.parametrize("stream", [False, True])
async def test_escalates_past_a_failing_model(gateway: RunningGateway, stream: bool) -> None:
    for name in ("gpt-4.1-mini", "claude-haiku-4-5"):  # the fast model and its failover
        gateway.upstream.fail(name, 503)
    async with client(gateway) as c:
        if stream:
            async with c.chat.completions.with_streaming_response.create(
                model="auto", stream=True, messages=[{"role": "user", "content": "hi"}],
            ) as response:
                headers = response.headers
                _ = [line async for line in response.iter_lines()]
        else:
            raw = await c.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": "hi"}])
            headers = raw.headers
            assert raw.parse().model == "openai/gpt-4.1"
    assert headers["x-taskroute-model"] == "openai/gpt-4.1"
    assert headers["x-taskroute-escalated"] == "true"
    rows = await gateway.log_rows()
    assert rows[0]["escalated"] == 1
