"""Providers built from the policy, one per `ProviderSpec`, chosen by its `api`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from taskroute.exceptions import UnknownModel
from taskroute.policy.model import ApiKind, Policy, ProviderSpec, split_model_id
from taskroute.providers.base import Provider

Factory = Callable[[ProviderSpec, Mapping[str, str] | None], Provider]


def _openai(spec: ProviderSpec, env: Mapping[str, str] | None) -> Provider:
    from taskroute.providers.openai import OpenAIProvider

    return OpenAIProvider(spec, env=env)


def _anthropic(spec: ProviderSpec, env: Mapping[str, str] | None) -> Provider:
    from taskroute.providers.anthropic import AnthropicProvider

    return AnthropicProvider(spec, env=env)


FACTORIES: dict[ApiKind, Factory] = {"openai": _openai, "anthropic": _anthropic}


def build_provider(spec: ProviderSpec, *, env: Mapping[str, str] | None = None) -> Provider:
    return FACTORIES[spec.api](spec, env)


def build_providers(
    policy: Policy, *, env: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """One provider per policy provider. Nothing connects until the first call; a missing key
    raises `ConfigError` (naming its variable) when that provider is first called."""
    return {name: build_provider(spec, env=env) for name, spec in policy.providers.items()}


class Providers:
    """The built providers, and the one way to turn a model id into (provider, upstream name)."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)

    @classmethod
    def from_policy(cls, policy: Policy, *, env: Mapping[str, str] | None = None) -> Providers:
        return cls(build_providers(policy, env=env))

    def __getitem__(self, name: str) -> Provider:
        return self._providers[name]

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def resolve(self, model_id: str) -> tuple[Provider, str]:
        """`provider/model` → (that provider, the model's upstream name)."""
        try:
            provider, name = split_model_id(model_id)
        except ValueError:
            raise UnknownModel(model_id, list(self._providers)) from None
        if provider not in self._providers:
            raise UnknownModel(model_id, [f"{p}/..." for p in self._providers])
        return self._providers[provider], name

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


def resolve(providers: Mapping[str, Provider], model_id: str) -> tuple[Provider, str]:
    """`provider/model` → (that provider, the model's upstream name)."""
    return Providers(providers).resolve(model_id)
