"""Azure OpenAI's deployment URLs and `api-key` header, against the simulated upstream's Azure
path shape; header values read from the environment, never written nor shown."""

from __future__ import annotations

import pytest

from taskroute.exceptions import ConfigError, PolicyError
from taskroute.policy.loader import parse_policy
from taskroute.providers.base import Timeouts
from taskroute.providers.registry import build_provider
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest

from .conftest import KEY

FAST = Timeouts(connect=2, first_token=5, total=10)
HELLO = ChatRequest.from_prompt("hello there")


def policy_text(base_url: str, provider_extra: str = "") -> str:
    return f"""
providers:
  azure:
    api: azure
    base url: {base_url}
{provider_extra}
models:
  azure/my-gpt-4o: {{tier: t, price: {{input: 2.5, output: 10}}}}
tiers: {{t: {{use: azure/my-gpt-4o}}}}
tasks: {{chat: t}}
"""


async def test_a_classic_deployment_url_with_its_query_is_called_right(
    upstream: SimulatedUpstream,
) -> None:
    url = f"{upstream.url}/openai/deployments/my-gpt-4o?api-version=2024-10-21"
    text = policy_text(url, "    headers: {api-key: {env: AZURE_TEST_KEY}}")
    assert KEY not in text
    spec = parse_policy(text).providers["azure"]
    provider = build_provider(spec, env={"AZURE_TEST_KEY": KEY})
    try:
        answer = await provider.complete(HELLO, model="my-gpt-4o", timeouts=FAST)
        chunks = [c async for c in provider.stream(HELLO, model="my-gpt-4o", timeouts=FAST)]
    finally:
        await provider.aclose()
    assert answer.text and "".join(c.delta_text for c in chunks) == answer.text
    assert upstream.requests["my-gpt-4o"] == 2
    headers = upstream.last_headers["my-gpt-4o"]
    assert headers["api-key"] == KEY and "Authorization" not in headers
    assert KEY not in repr(provider) and KEY not in repr(spec)


async def test_a_resource_url_serves_each_model_from_its_deployment(
    upstream: SimulatedUpstream,
) -> None:
    text = policy_text(upstream.url, "    api key env: AZURE_TEST_KEY\n"
                                     "    options: {api version: 2024-10-21}")
    provider = build_provider(parse_policy(text).providers["azure"],
                              env={"AZURE_TEST_KEY": KEY})
    try:
        answer = await provider.complete(HELLO, model="my-gpt-4o", timeouts=FAST)
    finally:
        await provider.aclose()
    assert answer.text
    assert upstream.last_headers["my-gpt-4o"]["api-key"] == KEY


def test_azure_needs_an_api_version(upstream: SimulatedUpstream) -> None:
    spec = parse_policy(policy_text(upstream.url)).providers["azure"]
    with pytest.raises(PolicyError, match="API version"):
        build_provider(spec, env={})


async def test_a_header_from_an_unset_variable_fails_naming_it(
    upstream: SimulatedUpstream,
) -> None:
    url = f"{upstream.url}/openai/deployments/my-gpt-4o?api-version=2024-10-21"
    spec = parse_policy(policy_text(url, "    headers: {api-key: {env: AZURE_UNSET}}"))
    provider = build_provider(spec.providers["azure"], env={})
    try:
        with pytest.raises(ConfigError, match="AZURE_UNSET"):
            await provider.complete(HELLO, model="my-gpt-4o", timeouts=FAST)
    finally:
        await provider.aclose()


async def test_a_wrong_key_is_refused_without_showing_the_key(
    upstream: SimulatedUpstream,
) -> None:
    url = f"{upstream.url}/openai/deployments/my-gpt-4o?api-version=2024-10-21"
    spec = parse_policy(policy_text(url, "    headers: {api-key: {env: AZURE_TEST_KEY}}"))
    wrong = "sk-wrong-but-still-secret-987654"
    provider = build_provider(spec.providers["azure"], env={"AZURE_TEST_KEY": wrong})
    try:
        with pytest.raises(Exception) as caught:
            await provider.complete(HELLO, model="my-gpt-4o", timeouts=FAST)
    finally:
        await provider.aclose()
    assert getattr(caught.value, "status", None) == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


async def test_a_base_url_query_stays_after_the_path_for_any_openai_provider(
    upstream: SimulatedUpstream,
) -> None:
    text = policy_text(f"{upstream.url}/openai/deployments/my-gpt-4o?api-version=2024-10-21",
                       "    headers: {api-key: {env: AZURE_TEST_KEY}}").replace(
        "api: azure", "api: openai")
    provider = build_provider(parse_policy(text).providers["azure"],
                              env={"AZURE_TEST_KEY": KEY})
    try:
        answer = await provider.complete(HELLO, model="my-gpt-4o", timeouts=FAST)
    finally:
        await provider.aclose()
    assert answer.text and upstream.requests["my-gpt-4o"] == 1


def test_a_header_from_the_environment_names_only_its_variable() -> None:
    spec = parse_policy(policy_text("https://r.openai.azure.com",
                                    "    headers: {api-key: {env: AZURE_KEY}, X-Team: routing}")
                        ).providers["azure"]
    assert dict(spec.header_env) == {"api-key": "AZURE_KEY"}
    assert dict(spec.headers) == {"X-Team": "routing"}
    with pytest.raises(PolicyError, match=r"unknown key 'value'; expected one of: env"):
        parse_policy(policy_text("https://r.openai.azure.com",
                                 "    headers: {api-key: {value: s3cret}}"))
