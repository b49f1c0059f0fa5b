"""A call that is cancelled hangs up, and the simulated upstream sees it (the race relies on it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest

REQUEST = ChatRequest.from_prompt("a long question")


async def wait_for(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Poll a counter the upstream's handler updates (it has no event to wait on)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_cancelling_a_waiting_call_is_seen_upstream() -> None:
    async with SimulatedUpstream({"strong": ModelProfile(first_token_s=5)}) as upstream:
        provider = OpenAIProvider(upstream.provider_spec())
        call = asyncio.create_task(provider.complete(REQUEST, model="strong", timeouts=Timeouts()))
        await wait_for(lambda: upstream.requests["strong"] == 1)
        call.cancel()
        await wait_for(lambda: upstream.cancelled["strong"] == 1)
        assert upstream.completed["strong"] == 0
        await provider.aclose()


async def test_stopping_a_stream_early_is_seen_upstream() -> None:
    async with SimulatedUpstream({"m": ModelProfile(tokens_per_s=50)}) as upstream:
        provider = OpenAIProvider(upstream.provider_spec())
        stream = provider.stream(REQUEST, model="m", timeouts=Timeouts())
        async for _ in stream:
            break
        await stream.aclose()
        await wait_for(lambda: upstream.cancelled["m"] == 1)
        await provider.aclose()


def test_a_provider_closed_in_one_event_loop_works_in_the_next() -> None:
    """What a sync wrapper running `asyncio.run` per call does: aclose before the loop ends."""
    with SimulatedUpstream() as upstream:
        provider = OpenAIProvider(ProviderSpec("sim", "openai", upstream.base_url))

        async def once() -> str:
            try:
                return (await provider.complete(REQUEST, model="m", timeouts=Timeouts())).text
            finally:
                await provider.aclose()

        assert asyncio.run(once()) == asyncio.run(once())
        assert upstream.completed["m"] == 2
