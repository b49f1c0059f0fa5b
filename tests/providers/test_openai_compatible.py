"""The recipe for OpenAI-compatible servers (docs/providers.md): each way one differs that
matters — its key header, its path, no `stream_options` — set in the policy and checked
against the stand-in."""

from __future__ import annotations

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy import parse_policy
from taskroute.providers.base import Timeouts
from taskroute.providers.registry import build_providers
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest

FAST = Timeouts(connect=2, first_token=5, total=10)


def policy(provider: str) -> str:
    return f"""\
providers:
  vendor:
{provider}
models:
  vendor/m: {{tier: fast, price: {{input: 1, output: 1}}}}
tiers:
  fast: {{use: vendor/m}}
tasks:
  chat: fast
when unsure: chat
"""


async def test_stream_usage_false_sends_no_stream_options_and_still_streams() -> None:
    async with SimulatedUpstream() as upstream:
        text = policy(f"    base url: {upstream.base_url}\n    simulated: true\n"
                      "    options: {stream usage: false}")
        provider = build_providers(parse_policy(text))["vendor"]
        request = ChatRequest.from_prompt("hello", stream_options={"include_usage": True})
        chunks = [c async for c in provider.stream(request, model="m", timeouts=FAST)]
        await provider.aclose()
    body = upstream.last_body["m"]
    assert body["stream"] is True and "stream_options" not in body
    assert "".join(c.delta_text for c in chunks) == "m answers: hello."
    assert all(c.usage is None for c in chunks)   # the server sent none: none is made up


async def test_a_key_in_another_header_and_a_path_prefix() -> None:
    """OpenRouter-, Groq- or Together-style: a base URL with its own path, the key as a
    bearer token; a server wanting the key elsewhere gets it as a header from the env."""
    async with SimulatedUpstream(api_key="k-123") as upstream:
        text = policy(f"    base url: {upstream.base_url}\n"
                      "    headers: {api-key: {env: VENDOR_KEY}, HTTP-Referer: https://x.test}")
        provider = build_providers(parse_policy(text), env={"VENDOR_KEY": "k-123"})["vendor"]
        response = await provider.complete(ChatRequest.from_prompt("hi"), model="m",
                                           timeouts=FAST)
        await provider.aclose()
    assert response.text == "m answers: hi."
    headers = upstream.last_headers["m"]
    assert headers["api-key"] == "k-123" and headers["HTTP-Referer"] == "https://x.test"
    assert "Authorization" not in headers


def test_stream_usage_must_be_a_boolean() -> None:
    text = policy("    base url: http://127.0.0.1:1/v1\n    options: {stream usage: maybe}")
    with pytest.raises(PolicyError, match="true or false"):
        build_providers(parse_policy(text))
