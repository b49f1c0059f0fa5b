"""What every adapter gets from `HttpClient.exchange` and `open_stream`: a streamed call whose
answer is not the stream it asked for is a `MalformedResponse` naming both types, whatever
the adapter (each once checked it in its own words)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from taskroute.exceptions import MalformedResponse
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.registry import build_provider
from taskroute.request import ChatRequest

REQUEST = ChatRequest.from_prompt("hello")
FAST = Timeouts(connect=2, first_token=5, total=10)
AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
       "AWS_REGION": "us-east-1"}


@pytest.fixture
async def json_only() -> AsyncIterator[str]:
    """A server that answers every POST with `200 application/json {}`, streamed or not."""
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize(("api", "expected"), [
    ("openai", "expected a text/event-stream answer, got application/json"),
    ("anthropic", "expected a text/event-stream answer, got application/json"),
    ("gemini", "expected a text/event-stream answer, got application/json"),
    ("bedrock", "expected an application/vnd.amazon.eventstream answer, got application/json"),
])
async def test_a_stream_answered_with_another_type_is_malformed(
    json_only: str, api: str, expected: str,
) -> None:
    provider = build_provider(ProviderSpec("up", api, json_only, simulated=True), env=AWS)
    try:
        with pytest.raises(MalformedResponse) as caught:
            async for _ in provider.stream(REQUEST, model="m", timeouts=FAST):
                pass
        assert expected in str(caught.value)
        assert caught.value.model == "m"
    finally:
        await provider.aclose()
