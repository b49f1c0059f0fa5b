"""The simulated upstream's parallel tool calls — several calls in one answer, another round
after tool results when told — checked with the official openai and anthropic SDKs as clients,
plain and streamed."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from taskroute.providers.simulated import SimulatedUpstream

from .conftest import KEY

NAMES = ("weather", "news", "stocks")
OPENAI_TOOLS: Any = [
    {"type": "function", "function": {"name": n, "description": f"the {n}", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    for n in NAMES]
ANTHROPIC_TOOLS: Any = [
    {"name": n, "description": f"the {n}", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    for n in NAMES]
ASK: Any = [{"role": "user", "content": "What is on in Paris today?"}]


async def test_openai_sdk_reads_several_tool_calls_in_one_answer(
        upstream: SimulatedUpstream) -> None:
    upstream.call_tools_in_parallel("gpt-sim")
    async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key=KEY,
                                  max_retries=0) as client:
        whole = await client.chat.completions.create(model="gpt-sim", messages=ASK,
                                                     tools=OPENAI_TOOLS)
        stream = await client.chat.completions.create(model="gpt-sim", messages=ASK,
                                                      tools=OPENAI_TOOLS, stream=True)
        streamed: dict[int, dict[str, str]] = {}
        async for chunk in stream:
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                got = streamed.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                got["id"] += delta.id or ""
                got["name"] += (delta.function.name or "") if delta.function else ""
                got["arguments"] += (delta.function.arguments or "") if delta.function else ""
        one = await client.chat.completions.create(model="gpt-sim", messages=ASK,
                                                   tools=OPENAI_TOOLS, parallel_tool_calls=False)
    calls = whole.choices[0].message.tool_calls or []
    assert whole.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == list(NAMES)  # type: ignore[union-attr]
    assert len({c.id for c in calls}) == 3
    assert [streamed[i] for i in range(3)] == [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}  # type: ignore[union-attr]
        for c in calls]
    assert len(one.choices[0].message.tool_calls or []) == 1   # one at a time, as asked


async def test_openai_sdk_round_trip_another_round_then_an_answer(
        upstream: SimulatedUpstream) -> None:
    upstream.call_tools_in_parallel("gpt-sim", again=True, times=2)
    async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key=KEY,
                                  max_retries=0) as client:
        messages: Any = list(ASK)
        ids: list[str] = []
        for _ in range(3):
            answer = await client.chat.completions.create(model="gpt-sim", messages=messages,
                                                          tools=OPENAI_TOOLS)
            message = answer.choices[0].message
            if not message.tool_calls:
                break
            ids += [c.id for c in message.tool_calls]
            messages.append(message.model_dump(exclude_none=True))
            messages += [{"role": "tool", "tool_call_id": c.id, "content": "sunny"}
                         for c in message.tool_calls]
    assert len(ids) == 6 and len(set(ids)) == 6     # two rounds of three, every id its own
    assert message.content and "tool result" in message.content


async def test_anthropic_sdk_reads_several_tool_use_blocks(upstream: SimulatedUpstream) -> None:
    upstream.call_tools_in_parallel("claude-sim")
    ask: dict[str, Any] = {"model": "claude-sim", "max_tokens": 500, "messages": ASK,
                           "tools": ANTHROPIC_TOOLS}
    async with anthropic.AsyncAnthropic(base_url=upstream.anthropic_base_url, api_key=KEY,
                                        max_retries=0) as client:
        whole = await client.messages.create(**ask)
        async with client.messages.stream(**ask) as stream:
            streamed = await stream.get_final_message()
        one = await client.messages.create(**ask, tool_choice={
            "type": "auto", "disable_parallel_tool_use": True})
        uses = [b for b in whole.content if isinstance(b, anthropic.types.ToolUseBlock)]
        answer = await client.messages.create(**{**ask, "messages": [
            *ASK, {"role": "assistant", "content": [b.model_dump() for b in uses]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id,
                                          "content": "sunny"} for b in uses]}]})
    assert whole.stop_reason == streamed.stop_reason == "tool_use"
    for message in (whole, streamed):
        blocks = [b for b in message.content if isinstance(b, anthropic.types.ToolUseBlock)]
        assert [b.name for b in blocks] == list(NAMES)
        assert all(b.input == {"city": "What is on in Paris today?"} for b in blocks)
    assert len([b for b in one.content if b.type == "tool_use"]) == 1
    assert answer.stop_reason == "end_turn"   # after the tool results, it answers in text
