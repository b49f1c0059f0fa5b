"""Fixtures for the adapter tests: a key-checking simulated upstream and providers aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskroute.policy.model import ProviderSpec
from taskroute.providers.anthropic import AnthropicProvider
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.simulated import SimulatedUpstream

KEY = "sk-test-very-secret-0123456789"
KEY_ENV = "TASKROUTE_TEST_KEY"


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream(api_key=KEY) as simulated:
        yield simulated


@pytest.fixture
async def openai(upstream: SimulatedUpstream) -> AsyncIterator[OpenAIProvider]:
    spec = ProviderSpec(name="sim-openai", api="openai", base_url=upstream.base_url,
                        api_key_env=KEY_ENV, headers={"X-Team": "routing"})
    provider = OpenAIProvider(spec, env={KEY_ENV: KEY})
    yield provider
    await provider.aclose()


@pytest.fixture
async def anthropic(upstream: SimulatedUpstream) -> AsyncIterator[AnthropicProvider]:
    spec = ProviderSpec(name="sim-anthropic", api="anthropic",
                        base_url=upstream.anthropic_base_url, api_key_env=KEY_ENV,
                        headers={"X-Team": "routing"})
    provider = AnthropicProvider(spec, env={KEY_ENV: KEY})
    yield provider
    await provider.aclose()
