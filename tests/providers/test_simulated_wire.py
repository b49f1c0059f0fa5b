"""The simulated upstream's newer wire details, checked with the vendors' official SDKs as
clients: Azure's deployment path, prompt-cache usage, reasoning tokens and thinking blocks."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from taskroute.providers.simulated import ModelProfile, SimulatedUpstream

from .conftest import KEY

LONG = "Background you must keep in mind. " * 200


async def test_the_azure_sdk_reaches_a_deployment(upstream: SimulatedUpstream) -> None:
    async with openai.AsyncAzureOpenAI(azure_endpoint=upstream.url, api_key=KEY,
                                       api_version="2024-10-21", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="my-gpt-4o", messages=[{"role": "user", "content": "hello"}])
        stream = await client.chat.completions.create(
            model="my-gpt-4o", messages=[{"role": "user", "content": "hello"}], stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert completion.choices[0].message.content == text
    assert upstream.requests["my-gpt-4o"] == 2


async def test_openai_sdk_reads_cached_and_reasoning_tokens(upstream: SimulatedUpstream) -> None:
    upstream.set_profile("o-sim", ModelProfile(reasoning_tokens=12))
    messages: Any = [{"role": "system", "content": LONG}, {"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key=KEY,
                                  max_retries=0) as client:
        first = await client.chat.completions.create(model="o-sim", messages=messages)
        second = await client.chat.completions.create(model="o-sim", messages=messages)
    for got, cached in ((first, False), (second, True)):
        usage = got.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        assert usage.completion_tokens_details is not None
        assert usage.completion_tokens_details.reasoning_tokens == 12
        assert bool(usage.prompt_tokens_details.cached_tokens) is cached


async def test_anthropic_sdk_reads_cache_usage_and_thinking(upstream: SimulatedUpstream) -> None:
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    ask: dict[str, Any] = {"model": "claude-sim", "max_tokens": 2000, "system": system,
                           "thinking": {"type": "enabled", "budget_tokens": 1024},
                           "messages": [{"role": "user", "content": "hi"}]}
    async with anthropic.AsyncAnthropic(base_url=upstream.anthropic_base_url, api_key=KEY,
                                        max_retries=0) as client:
        first = await client.messages.create(**ask)
        async with client.messages.stream(**ask) as stream:
            second = await stream.get_final_message()
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens and not second.usage.cache_creation_input_tokens
    for message in (first, second):
        thought = message.content[0]
        assert isinstance(thought, anthropic.types.ThinkingBlock)
        assert thought.thinking and thought.signature
        assert message.content[1].type == "text"
