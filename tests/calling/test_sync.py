"""`complete_sync` keeps one private loop for the Router's life: breaker state and connections
carry across calls; async calls made afterwards run on that loop; `close()` ends it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from tests.calling.support import ask, make_policy


def sync_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "taskroute-sync")


def test_breaker_state_carries_across_sync_calls() -> None:
    with SimulatedUpstream() as upstream:
        router = Router(make_policy(upstream, retries=0, failures=2, cooldown="10s"),
                        classifier=False)
        upstream.fail("small", 503)
        for _ in range(2):
            assert router.complete_sync(ask(), task="chat").record.answered_model == "sim/small"
        third = router.complete_sync(ask(), task="chat")
        assert third.record.attempts[0].status == "skipped"  # the circuit stayed open
        assert upstream.requests["small"] == 2
        router.close()
    assert sync_threads() == 0


def test_async_calls_after_sync_ones_share_the_loop_and_stream_needs_close() -> None:
    with SimulatedUpstream() as upstream:
        router = Router(make_policy(upstream, retries=0, failures=1, cooldown="10s"),
                        classifier=False)
        upstream.fail("small", 503)
        router.complete_sync(ask(), task="chat")   # opens the circuit on the private loop

        async def from_another_loop() -> str:
            result = await router.complete(ask(), task="chat")
            with pytest.raises(RuntimeError, match="close"):
                router.stream(ask(), task="chat")
            await router.aclose()
            return result.record.attempts[0].status

        assert asyncio.run(from_another_loop()) == "skipped"  # same breakers
        assert sync_threads() == 0
        # after close, the Router works again, on a fresh loop
        assert router.complete_sync(ask("again"), task="chat").response.text
        router.close()
        router.close()  # idempotent
    assert sync_threads() == 0


async def test_complete_sync_inside_a_loop_is_refused() -> None:
    with SimulatedUpstream() as upstream:
        router = Router(make_policy(upstream), classifier=False)
        with pytest.raises(RuntimeError, match="await complete"):
            router.complete_sync(ask(), task="chat")
