"""Fixtures for the call-path tests: the stand-in upstream and routers over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router

from .support import RouterFactory, make_policy


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


@pytest.fixture
async def make_router(upstream: SimulatedUpstream) -> AsyncIterator[RouterFactory]:
    """Build routers over the stand-in upstream; all are closed after the test."""
    made: list[Router] = []

    def build(**policy_kw: object) -> Router:
        router_kw = {k: policy_kw.pop(k) for k in ("store", "gates") if k in policy_kw}
        policy = make_policy(upstream, **policy_kw)  # type: ignore[arg-type]
        router = Router(policy, classifier=False, **router_kw)  # type: ignore[arg-type]
        made.append(router)
        return router

    yield build
    for router in made:
        await router.aclose()
