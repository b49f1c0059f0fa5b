"""Redis stopped and restarted in the middle of load: failing open serves on this process's
counters (counted, logged) and sends what it held back when Redis returns; failing closed
refuses with 503 meanwhile. Neither hangs."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from taskroute.exceptions import BudgetExhausted, SharedStateUnavailable
from taskroute.shared.base import Lookup
from taskroute.shared.redis_state import RedisState
from tests.servers import RedisServer

DAY = ("day", "")


async def _load(state: RedisState, server: RedisServer, fail_closed: bool,
                rounds: int = 300) -> dict[str, int]:
    """`rounds` requests (bounded, ~3 s at most), Redis stopped at a third, back at two thirds."""
    outcome = {"served": 0, "refused": 0}
    deadline = time.monotonic() + 20
    lookup = Lookup(rate_key="k", rpm=100_000, session="s", scopes=(DAY,),
                    fail_closed=fail_closed)
    for i in range(rounds):
        if time.monotonic() > deadline:
            break
        if i == rounds // 3:
            await asyncio.to_thread(server.stop)
        if i == 2 * rounds // 3:
            await asyncio.to_thread(server.start)
        try:
            fetched = await state.prefetch(lookup)
            assert fetched.retry_after is None
            hold = await state.spend.reserve(0.001, user=None, key=None, limits={DAY: 100.0},
                                             fail_closed=fail_closed)
        except SharedStateUnavailable:
            outcome["refused"] += 1
        else:
            outcome["served"] += 1
            state.spend.settle(hold, 0.001, user=None, key=None)
        await asyncio.sleep(0.005)
    return outcome


async def test_failing_open_serves_through_an_outage_and_catches_up(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(own_redis.url)
    await state.start()
    caplog.set_level(logging.WARNING, "taskroute.shared")
    try:
        outcome = await _load(state, own_redis, fail_closed=False)
        assert outcome == {"served": 300, "refused": 0}
        assert state.fallbacks > 0
        assert any("fails open" in r.getMessage() for r in caplog.records)
        # back on Redis: new requests are counted there again, and the outage's settlements
        # reached it once it returned
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            spent = (await state.prefetch(Lookup(scopes=(DAY,)))).snapshot.spent[DAY]
            if spent > 0.15:
                break
            await state.drain()
            await asyncio.sleep(0.1)
        assert spent > 0.15  # the outage's 100 and the 100 after it (Redis forgot the rest)
        assert state.lost == 0
        # its event channel reconnected too: another replica's breaker news reaches it
        other = RedisState(own_redis.url)
        await other.start()
        other.breakers.opened("openai:gpt-x", 30.0)
        for _ in range(500):
            if state.breakers.open_for("openai:gpt-x") > 0:
                break
            await asyncio.sleep(0.01)
        await other.aclose()
        assert state.breakers.open_for("openai:gpt-x") > 0
    finally:
        await state.aclose()


async def test_failing_closed_refuses_during_an_outage_and_serves_after(
        own_redis: RedisServer) -> None:
    state = RedisState(own_redis.url)
    await state.start()
    try:
        outcome = await _load(state, own_redis, fail_closed=True)
        assert outcome["refused"] > 0 and outcome["served"] > 100
        assert state.refusals == outcome["refused"]
        after = await state.prefetch(Lookup(scopes=(DAY,), fail_closed=True))
        assert after.retry_after is None
    finally:
        await state.aclose()


async def test_the_budget_still_refuses_while_redis_is_down_and_failing_open(
        own_redis: RedisServer) -> None:
    state = RedisState(own_redis.url)
    await state.start()
    try:
        own_redis.stop()
        first = await state.spend.reserve(1.0, user=None, key=None, limits={DAY: 1.0})
        state.spend.settle(first, 1.0, user=None, key=None)
        with pytest.raises(BudgetExhausted):  # this process's own books still hold
            await state.spend.reserve(0.5, user=None, key=None, limits={DAY: 1.0})
    finally:
        await state.aclose()
