"""What a failed attempt is charged: providers bill no 5xx or 429, so those cost nothing; a call
that timed out after it was sent keeps its input estimate (the provider may have read it)."""

from __future__ import annotations

import pytest

from taskroute.providers.simulated import SimulatedUpstream

from .support import RouterFactory, ask


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_attempt_refused_with_5xx_or_429_costs_nothing(
    make_router: RouterFactory, upstream: SimulatedUpstream, status: int
) -> None:
    upstream.fail("small", status)
    result = await make_router(retries=0).complete(ask(), task="chat")
    failed = result.record.attempts[0]
    assert failed.status == "error" and failed.deployment == "sim/small"
    assert failed.input_tokens == 0 and failed.cost_usd == 0
    assert result.record.total_cost_usd == sum(a.cost_usd for a in result.record.attempts[1:])


async def test_a_timed_out_attempt_keeps_its_input_estimate(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.answer_slowly("small", 2.0)
    result = await make_router(retries=0, first_token="100ms").complete(ask(), task="chat")
    failed = result.record.attempts[0]
    assert "UpstreamTimeout" in (failed.error or "")
    assert failed.input_tokens > 0 and failed.cost_usd > 0
