"""A stream read to its end hands its connection back to the pool (a new connection per streamed
call costs a TCP handshake on every request's path), its last bytes drained in the background
when they come after the last event; one abandoned midway is closed (hanging up stops the
upstream). No drain outlives the provider's `aclose` or its event loop holding a connection."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from taskroute.providers.base import Provider, Timeouts
from taskroute.providers.registry import build_provider
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest

REQUEST = ChatRequest.from_prompt("tell me about connection pools in a few words")
AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
       "AWS_REGION": "us-east-1"}
APIS = ["openai", "anthropic", "gemini", "bedrock"]


def drains(provider: Provider) -> list[asyncio.Task[None]]:
    """The provider's finished streams still reading their last bytes."""
    http: Any = provider._http  # type: ignore[attr-defined]
    return list(http._draining)


async def drains_done(provider: Provider) -> None:
    await asyncio.wait_for(asyncio.gather(*drains(provider)), 10)


async def read_whole(provider: Provider) -> None:
    chunks = [c async for c in provider.stream(REQUEST, model="m", timeouts=Timeouts())]
    assert any(c.finish_reason for c in chunks)


@pytest.mark.parametrize("api", APIS)
async def test_streams_read_to_the_end_reuse_one_connection(api: str) -> None:
    async with SimulatedUpstream() as upstream:
        # the chunked body's end comes 50 ms after the last event: the stream is done first
        upstream.behave("m", end_delay_s=0.05)
        provider = build_provider(upstream.provider_spec("sim", api), env=AWS)
        try:
            for _ in range(4):
                await read_whole(provider)
                await drains_done(provider)
            assert upstream.completed["m"] == 4
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
            assert not drains(provider)
            await read_whole(provider)
            assert len(upstream.connections["m"]) == 2
        finally:
            await provider.aclose()


# (Gemini's stream has no end event: it is done at the body's end, so nothing is left to drain)
@pytest.mark.parametrize("api", ["openai", "anthropic", "bedrock"])
async def test_aclose_closes_a_stream_still_draining(api: str) -> None:
    async with SimulatedUpstream() as upstream:
        upstream.behave("m", end_delay_s=30)   # the body's end would come long after
        provider = build_provider(upstream.provider_spec("sim", api), env=AWS)
        await read_whole(provider)
        assert len(drains(provider)) == 1
        await provider.aclose()
        assert not drains(provider)


@pytest.mark.parametrize("close", [True, False], ids=["closed", "never closed"])
def test_no_drain_outlives_its_event_loop(close: bool) -> None:
    """As the CLI runs: one `asyncio.run` per command, the provider closed (or not) at its end;
    nothing is left holding a connection once the loop is gone."""
    with SimulatedUpstream() as upstream:
        upstream.behave("m", end_delay_s=30)
        provider = build_provider(upstream.provider_spec("sim", "openai"), env={})

        async def command() -> None:
            await read_whole(provider)
            assert len(drains(provider)) == 1
            if close:
                await provider.aclose()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(command())
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [
            str(w.message) for w in caught]
        if not close:
            asyncio.run(provider.aclose())
