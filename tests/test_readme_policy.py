"""The README's three-provider policy is a valid policy of three provider kinds."""

from __future__ import annotations

import re
from pathlib import Path

from taskroute.policy import parse_policy
from taskroute.providers.registry import build_providers

README = Path(__file__).parent.parent / "README.md"


def test_the_readme_policy_section_shows_a_three_provider_policy() -> None:
    section = README.read_text().split("### Providers and prices", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found is not None
    policy = parse_policy(found.group(1), file="README.md")
    assert {spec.api for spec in policy.providers.values()} == {"gemini", "bedrock", "openai"}
    assert set(build_providers(policy, env={})) == {"gemini", "bedrock", "openai"}
