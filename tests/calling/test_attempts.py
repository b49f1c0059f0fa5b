"""Every call that reached a provider is recorded exactly once, however its request ends."""

from __future__ import annotations

import asyncio

from taskroute.providers.simulated import SimulatedUpstream

from .support import MemoryStore, RouterFactory, ask, eventually


async def test_an_answer_awaiting_its_gates_is_recorded_when_the_request_is_cancelled(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    store = MemoryStore()
    router = make_router(store=store)
    upstream.answer_slowly("large", 5.0)       # the judge (sim/large) takes its time
    task = asyncio.ensure_future(router.complete(ask("What is the capital of France?"),
                                                 task="qa"))
    assert await eventually(lambda: upstream.requests.get("large", 0) == 1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    (entry,) = store.entries
    (small,) = [a for a in entry.record.attempts if a.model == "sim/small"]
    assert small.status == "cancelled"
    assert small.output_tokens > 0 and small.cost_usd > 0   # it answered: it is paid for
    assert "before this answer was judged" in (small.error or "")
    assert entry.record.status == "error"


async def test_each_attempt_is_recorded_once_across_escalation_and_failover(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    store = MemoryStore()
    router = make_router(store=store, retries=0)
    upstream.fail("small", 503)                 # → failover to alt/small-b, which truncates
    upstream.truncate("small-b")
    result = await router.complete(ask("hello there"))
    attempts = result.record.attempts
    assert [(a.deployment, a.status) for a in attempts] == [
        ("sim/small", "error"), ("alt/small-b", "rejected"), ("sim/medium", "ok")]
    assert len(attempts) == sum(upstream.requests.values())
    assert store.entries[0].record.attempts == attempts
