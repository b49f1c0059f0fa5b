"""Every answer through /v1/chat/completions carries every field OpenAI's schema requires,
whoever served it: checked on the raw JSON and with the official `openai` SDK."""

from __future__ import annotations

import json

import openai

from tests.gateway.conftest import RunningGateway

CLAUDE = "anthropic/claude-haiku-4-5"   # an Anthropic deployment, named to bypass routing


def client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="none", max_retries=0, timeout=10)


async def test_an_anthropic_answer_has_every_required_field(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=CLAUDE, messages=[{"role": "user", "content": "hello there"}])
    body = json.loads(raw.text)
    assert {"id", "object", "created", "model", "choices", "usage"} <= body.keys()
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert "logprobs" in choice
    assert choice["message"]["role"] == "assistant" and "refusal" in choice["message"]
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= body["usage"].keys()
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].index == 0
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    assert completion.model == CLAUDE


async def test_anthropic_stream_chunks_have_every_required_field(
    gateway: RunningGateway,
) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model=CLAUDE, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hello there"}])
        chunks = [chunk async for chunk in stream]
    assert all(ch.object == "chat.completion.chunk" and ch.id and ch.created for ch in chunks)
    choices = [choice for ch in chunks for choice in ch.choices]
    assert all(choice.index == 0 for choice in choices)
    assert choices[0].delta.role == "assistant"
    assert choices[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


async def test_chunks_missing_fields_from_an_upstream_are_completed() -> None:
    from taskroute.response import complete_chunk

    data = complete_chunk({"model": "m", "choices": [{"delta": {"content": "hi"}}]},
                          fallback_id="chatcmpl-1")
    assert data["id"] == "chatcmpl-1" and data["object"] == "chat.completion.chunk"
    assert isinstance(data["created"], int)
    assert data["choices"][0] == {"delta": {"content": "hi"}, "index": 0, "finish_reason": None}
