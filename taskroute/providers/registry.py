"""Providers built from the policy, one per `ProviderSpec`, by the factory its `api` names.

A provider kind is a factory `(spec, env) -> Provider` registered in `taskroute.plugins.PROVIDERS`:
the built-ins (`openai.build`, `anthropic.build`) and a plugin's entry point in the
`taskroute.providers` group alike. `env` is where keys are read (None: the process
environment, read by the provider, so no signature shows it). A factory reads its own settings
from `spec.options` and raises ValueError, in a plain sentence, for ones it does not take.
Building connects nothing: the first call does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from taskroute.exceptions import PolicyError
from taskroute.plugins import PROVIDERS
from taskroute.policy.model import Policy, ProviderSpec
from taskroute.providers.base import Provider

ProviderFactory = Callable[[ProviderSpec, Mapping[str, str] | None], Provider]


def provider_factory(kind: str) -> ProviderFactory:
    """The registered factory for a provider kind (`PluginError` when unknown or broken)."""
    factory: ProviderFactory = PROVIDERS.load(kind)
    return factory


def build_provider(
    spec: ProviderSpec, *, env: Mapping[str, str] | None = None, source: str | None = None
) -> Provider:
    """One provider; a factory's ValueError becomes a PolicyError at the provider's line."""
    factory = provider_factory(spec.api)
    try:
        with PROVIDERS.calling(spec.api):
            return factory(spec, env)
    except ValueError as exc:
        raise PolicyError(f"provider '{spec.name}' ({spec.api}): {exc}", file=source,
                          line=spec.line or None, key=f"providers.{spec.name}") from None


def build_providers(
    policy: Policy, *, env: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """One provider per policy provider. Nothing connects until the first call; a missing key
    raises `ConfigError` (naming its variable) when that provider is first called."""
    return {name: build_provider(spec, env=env, source=policy.source)
            for name, spec in policy.providers.items()}


def no_options(spec: ProviderSpec) -> None:
    """For kinds that take no options: refuse any, so a typo does not pass silently."""
    if spec.options:
        raise ValueError(f"the {spec.api} provider kind takes no options, got "
                         f"{', '.join(k.replace('_', ' ') for k in spec.options)}")
