"""Providers built from the policy, and model ids resolved to (provider, upstream name)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from taskroute.exceptions import UnknownModel
from taskroute.policy.model import Policy, ProviderSpec
from taskroute.providers.anthropic import AnthropicProvider
from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.registry import Providers, build_providers, resolve
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest


def policy_with(*specs: ProviderSpec) -> Policy:
    return Policy(name="t", description="", source=None,
                  providers=MappingProxyType({s.name: s for s in specs}),
                  models=MappingProxyType({}), tiers=(), tasks=MappingProxyType({}),
                  default_task="chat")


async def test_builds_one_provider_per_spec_by_its_api() -> None:
    policy = policy_with(
        ProviderSpec("oa", "openai", "https://api.openai.com/v1", api_key_env="NOPE_1"),
        ProviderSpec("an", "anthropic", "https://api.anthropic.com", api_key_env="NOPE_2"),
    )
    providers = build_providers(policy, env={})  # no key needed until a call
    assert isinstance(providers["oa"], OpenAIProvider)
    assert isinstance(providers["an"], AnthropicProvider)
    provider, name = resolve(providers, "an/claude-haiku-4-5")
    assert provider is providers["an"]
    assert name == "claude-haiku-4-5"


@pytest.mark.parametrize("model_id", ["nobody/x", "no-slash"])
def test_resolving_an_unknown_model_is_a_caller_error(model_id: str) -> None:
    providers = Providers({})
    with pytest.raises(UnknownModel):
        providers.resolve(model_id)


async def test_resolved_providers_answer_from_the_simulated_upstream() -> None:
    async with SimulatedUpstream() as upstream:
        policy = policy_with(upstream.provider_spec("sim"),
                             upstream.provider_spec("simc", api="anthropic"))
        providers = Providers.from_policy(policy, env={})
        try:
            for model_id in ("sim/small", "simc/large"):
                provider, name = providers.resolve(model_id)
                answer = await provider.complete(ChatRequest.from_prompt("hi"), model=name,
                                                 timeouts=Timeouts())
                assert answer.text == f"{name} answers: hi."
        finally:
            await providers.aclose()
