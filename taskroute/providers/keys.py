"""Which providers of a policy can be called at all: a provider that needs an API key whose
variable is unset fails every call with `ConfigError`. Read by `/readyz` (not ready when no
deployment can be called) and by the CLI (one short line instead of every attempt's error)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from taskroute.policy.model import Policy, split_model_id


def missing_keys(policy: Policy, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """{provider name: the unset variable} for every provider whose key is needed but unset."""
    env = os.environ if env is None else env
    return {name: spec.api_key_env for name, spec in policy.providers.items()
            if spec.api_key_env and not spec.simulated
            and not env.get(spec.api_key_env, "").strip()}


def callable_deployments(policy: Policy, env: Mapping[str, str] | None = None) -> list[str]:
    """Every deployment (`provider/model`, failovers included) whose provider can be called."""
    missing = missing_keys(policy, env)
    deployments = {d for spec in policy.models.values() for d in spec.deployments}
    return sorted(d for d in deployments if split_model_id(d)[0] not in missing)


def no_key_message(policy: Policy, env: Mapping[str, str] | None = None) -> str | None:
    """'no provider key is set: set OPENAI_API_KEY, ANTHROPIC_API_KEY' when no deployment can
    be called for want of keys, else None."""
    if callable_deployments(policy, env):
        return None
    variables = sorted(set(missing_keys(policy, env).values()))
    if not variables:
        return None
    return f"no provider key is set: set {', '.join(variables)}"
