"""A stream read to its end hands its connection back to the pool (a new connection per streamed
call costs a TCP handshake on every request's path); one abandoned midway is closed (hanging up
stops the upstream), so the next call opens another."""

from __future__ import annotations

import asyncio

import pytest

from taskroute.providers.base import Timeouts
from taskroute.providers.registry import build_provider
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest

REQUEST = ChatRequest.from_prompt("tell me about connection pools in a few words")


@pytest.mark.parametrize("api", ["openai", "anthropic", "gemini", "bedrock"])
async def test_streams_read_to_the_end_reuse_one_connection(api: str) -> None:
    async with SimulatedUpstream() as upstream:
        provider = build_provider(upstream.provider_spec("sim", api), env={
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "us-east-1"})
        try:
            for _ in range(6):
                chunks = [c async for c in provider.stream(REQUEST, model="m",
                                                          timeouts=Timeouts())]
                assert any(c.finish_reason for c in chunks)
                await asyncio.sleep(0.01)  # a background drain of the last bytes, if any
            assert upstream.completed["m"] == 6
            assert len(upstream.connections["m"]) == 1, upstream.connections["m"]
        finally:
            await provider.aclose()


async def test_a_stream_stopped_early_does_not_go_back_to_the_pool() -> None:
    async with SimulatedUpstream({"m": ModelProfile(tokens_per_s=20)}) as upstream:
        provider = build_provider(upstream.provider_spec("sim", "openai"), env={})
        try:
            stream = provider.stream(REQUEST, model="m", timeouts=Timeouts())
            async for _ in stream:
                break
            await stream.aclose()  # type: ignore[attr-defined]
            [c async for c in provider.stream(REQUEST, model="m", timeouts=Timeouts())]
            assert len(upstream.connections["m"]) == 2
        finally:
            await provider.aclose()
