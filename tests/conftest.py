"""Fixtures shared by every test package. Keep each one small and generic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskroute.providers.simulated import SimulatedUpstream


@pytest.fixture
async def simulated_upstream() -> AsyncIterator[SimulatedUpstream]:
    """The SIMULATED stand-in upstream on 127.0.0.1 (OpenAI and Anthropic wire formats);
    every model answers instantly unless a test sets a profile or a behaviour."""
    async with SimulatedUpstream() as upstream:
        yield upstream
