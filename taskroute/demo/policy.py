"""The default policy pointed at the package's SIMULATED upstream: same tiers, models and
prices, every provider's base URL replaced by the stand-in on 127.0.0.1 and marked simulated."""

from __future__ import annotations

import re
from dataclasses import replace
from types import MappingProxyType

from taskroute.policy.model import Policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream

# Per-tier latency and skill for the simulated models: weaker models are faster and hedge on
# hard prompts, which the gates catch and escalate. SIMULATED figures, not measurements.
TIER_PROFILES = {
    "fast": ModelProfile(first_token_s=0.12, tokens_per_s=400, skill=0.55),
    "balanced": ModelProfile(first_token_s=0.35, tokens_per_s=150, skill=0.8),
    "strong": ModelProfile(first_token_s=0.8, tokens_per_s=80, skill=0.97),
}


def simulated_policy(policy: Policy, upstream: SimulatedUpstream) -> Policy:
    """`policy` with every provider aimed at `upstream` (no keys needed, nothing leaves the
    machine)."""
    providers = {
        name: replace(
            spec, api_key_env=None, simulated=True,
            base_url=upstream.anthropic_base_url if spec.api == "anthropic" else upstream.base_url,
        )
        for name, spec in policy.providers.items()
    }
    return replace(policy, name=f"{policy.name} (simulated)",
                   providers=MappingProxyType(providers))


def profiles_for(policy: Policy) -> dict[str, ModelProfile]:
    """Simulated profiles keyed by the upstream model name, from each model's tier."""
    return {spec.upstream_name: TIER_PROFILES.get(spec.tier, TIER_PROFILES["balanced"])
            for spec in policy.models.values()}


def simulated_policy_text(policy_text: str, upstream_url: str) -> str:
    """A policy file's text with its two default providers aimed at a simulated upstream at
    `upstream_url` (for a separate process, such as `taskroute serve` in tests and benches)."""
    text = re.sub(r"base url: https://api\.openai\.com/v1",
                  f"base url: {upstream_url}/v1\n    simulated: true", policy_text)
    return re.sub(r"base url: https://api\.anthropic\.com",
                  f"base url: {upstream_url}\n    simulated: true", text)
