"""No public signature shows the process environment (where API keys live) as a default."""

from __future__ import annotations

import inspect
import os

from taskroute.providers import anthropic, openai
from taskroute.providers.anthropic import AnthropicProvider
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.registry import build_provider, build_providers


def test_signatures_do_not_embed_the_environment() -> None:
    os.environ["TASKROUTE_TEST_CANARY"] = "sk-canary-value"
    try:
        for thing in (OpenAIProvider, AnthropicProvider, build_provider, build_providers,
                      openai.build, anthropic.build):
            assert "sk-canary-value" not in str(inspect.signature(thing))
    finally:
        del os.environ["TASKROUTE_TEST_CANARY"]
