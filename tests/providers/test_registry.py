"""Providers built from the policy by their registered kind, and what a kind refuses."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy.loader import parse_policy
from taskroute.policy.model import Policy, ProviderSpec, split_model_id
from taskroute.providers.anthropic import AnthropicProvider
from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.registry import build_providers
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest

POLICY = """
providers:
  vendor:
    base url: https://vendor.example/v1
{extra}
models:
  vendor/m: {{tier: fast, price: {{input: 1, output: 1}}}}
tiers:
  fast: {{use: vendor/m}}
tasks:
  chat: fast
"""


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


def test_an_unregistered_api_fails_at_load_naming_line_and_known_kinds() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(POLICY.format(extra="    api: grpc-magic"), file="p.yaml")
    message = str(caught.value)
    assert message.startswith("p.yaml:5") and "providers.vendor.api" in message
    assert "unknown provider kind 'grpc-magic'" in message
    assert "anthropic" in message and "openai" in message


def test_a_built_in_kind_refuses_options_at_the_providers_line() -> None:
    policy = parse_policy(POLICY.format(extra="    options: {deployment: x}"), file="p.yaml")
    assert dict(policy.providers["vendor"].options) == {"deployment": "x"}
    with pytest.raises(PolicyError) as caught:
        build_providers(policy, env={})
    message = str(caught.value)
    assert message.startswith("p.yaml:3") and "takes only 'stream usage', got deployment" in message


async def test_built_providers_answer_from_the_simulated_upstream() -> None:
    async with SimulatedUpstream() as upstream:
        policy = policy_with(upstream.provider_spec("sim"),
                             upstream.provider_spec("simc", api="anthropic"))
        providers = build_providers(policy, env={})
        try:
            for model_id in ("sim/small", "simc/large"):
                provider_name, name = split_model_id(model_id)
                answer = await providers[provider_name].complete(
                    ChatRequest.from_prompt("hi"), model=name, timeouts=Timeouts())
                assert answer.text == f"{name} answers: hi."
        finally:
            for provider in providers.values():
                await provider.aclose()
