"""Two shared states on one store play two replicas — `RedisState`s on one Redis (replicas
anywhere), `SqliteState`s on one file (one machine's workers): what one does, the other sees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskroute.exceptions import BudgetExhausted
from taskroute.quality.budgets import Hold
from taskroute.shared.base import Lookup
from taskroute.shared.redis_state import RedisState
from taskroute.shared.sqlite_state import SqliteState

State = Any   # RedisState | SqliteState: the same methods


@pytest.fixture(params=["redis", "sqlite"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the pair keeps its state: a Redis URL, or a SQLite file."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(tmp_path / "shared.db")


def _open(where: str, **options: Any) -> State:
    if where.startswith("redis://"):
        return RedisState(where, **options)
    return SqliteState(where, **options)


async def _pair(where: str) -> tuple[State, State]:
    a, b = _open(where), _open(where)
    await a.start()
    await b.start()
    return a, b


async def _eventually(done: Callable[[], bool], timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.01)):  # pub/sub delivery takes a moment
        if done():
            return
        await asyncio.sleep(0.01)


async def _close(*states: State) -> None:
    for state in states:
        await state.aclose()


async def test_a_rate_limit_holds_across_replicas(where: str) -> None:
    a, b = await _pair(where)
    try:
        waits = [await (a if i % 2 else b).rate.take("key-1", 5) for i in range(12)]
        assert waits.count(None) == 5
        assert all(w is not None and w >= 1 for w in waits[5:])
        assert await a.rate.take("key-2", 5) is None  # another key has its own
    finally:
        await _close(a, b)


async def test_the_prefetch_refuses_past_the_rate_and_reads_in_the_same_round_trip(
        where: str) -> None:
    a, b = await _pair(where)
    try:
        lookup = Lookup(rate_key="k", rpm=2, session="s1", scopes=(("day", ""),))
        first, second, third = [await s.prefetch(lookup) for s in (a, b, a)]
        assert first.retry_after is None and second.retry_after is None
        assert third.retry_after is not None
    finally:
        await _close(a, b)


async def test_replicas_reserving_together_cannot_overspend(where: str) -> None:
    a, b = await _pair(where)
    limits = {("day", ""): 10.0}
    try:
        async def one(state: State) -> Hold | None:
            try:
                hold: Hold = await state.spend.reserve(1.0, user=None, key=None, limits=limits)
                return hold
            except BudgetExhausted:
                return None

        holds = await asyncio.gather(*(one(a if i % 2 else b) for i in range(40)))
        granted = [h for h in holds if h is not None]
        assert len(granted) == 10
        for hold in granted:  # each cost what it held
            (a if hash(hold.id) % 2 else b).spend.settle(hold, 1.0, user=None, key=None)
        await a.drain()
        await b.drain()
        spent = (await b.prefetch(Lookup(scopes=(("day", ""),)))).snapshot.spent
        assert spent[("day", "")] == pytest.approx(10.0)
        with pytest.raises(BudgetExhausted, match="used up"):
            await a.spend.reserve(0.01, user=None, key=None, limits=limits)
    finally:
        await _close(a, b)


async def test_a_settlement_sent_twice_counts_once(where: str) -> None:
    a, b = await _pair(where)
    try:
        hold = await a.spend.reserve(2.0, user="u", key=None, limits={("user", "u"): 5.0})
        a.spend.settle(hold, 1.5, user="u", key=None)
        b.spend.settle(hold, 1.5, user="u", key=None)  # a retry, from wherever
        await a.drain()
        await b.drain()
        spent = (await a.prefetch(Lookup(scopes=(("user", "u"),)))).snapshot.spent
        assert spent[("user", "u")] == pytest.approx(1.5)  # held 2.0 released, 1.5 paid once
    finally:
        await _close(a, b)


async def test_a_session_s_escalations_on_one_replica_are_read_on_the_other(
        where: str) -> None:
    a, b = await _pair(where)
    try:
        a.sessions.record_escalation("sess-1")
        a.sessions.record_escalation("sess-1")
        await a.drain()
        got = await b.prefetch(Lookup(session="sess-1", window_s=60))
        assert got.snapshot.escalations == 2
        assert (await b.prefetch(Lookup(session="sess-2"))).snapshot.escalations == 0
    finally:
        await _close(a, b)


async def test_a_breaker_opened_by_one_replica_is_open_on_the_other(where: str) -> None:
    a, b = await _pair(where)
    try:
        a.breakers.opened("openai:gpt-x", 30.0)
        await _eventually(lambda: b.breakers.open_for("openai:gpt-x") > 0)
        assert 25 < b.breakers.open_for("openai:gpt-x") <= 30
        late = _open(where)  # a replica started afterwards reads it on connecting
        await late.start()
        assert late.breakers.open_for("openai:gpt-x") > 25
        await late.aclose()
    finally:
        await _close(a, b)


async def test_another_replicas_trip_is_heard_and_ones_own_is_not(where: str) -> None:
    from taskroute.calling.breaker import TripHistory

    a, b = await _pair(where)
    a_trips, b_trips = TripHistory(), TripHistory()
    a.breakers.on_heard(a_trips.heard)
    b.breakers.on_heard(b_trips.heard)
    try:
        a.breakers.opened("openai:gpt-y", 30.0)
        await _eventually(lambda: bool(b_trips.recent()))
        (trip,) = b_trips.recent()
        assert (trip.deployment, trip.by) == ("openai:gpt-y", "replica")
        assert 25 < trip.retry_at - trip.opened_at <= 30
        b.breakers.opened("openai:gpt-z", 30.0)
        await _eventually(lambda: bool(a_trips.recent()))
        assert [t.deployment for t in a_trips.recent()] == ["openai:gpt-z"]  # not its own
        assert [t.deployment for t in b_trips.recent()] == ["openai:gpt-y"]
    finally:
        await _close(a, b)


async def test_a_reload_broadcast_reaches_the_others_not_its_sender(where: str) -> None:
    a, b = await _pair(where)
    heard: list[str] = []

    def hear(name: str) -> object:
        async def callback() -> None:
            heard.append(name)
        return callback

    a.broadcast.on_reload(hear("a"))
    b.broadcast.on_reload(hear("b"))
    try:
        await a.broadcast.publish_reload()
        await _eventually(lambda: bool(heard))
        await asyncio.sleep(0.05)
        assert heard == ["b"]
    finally:
        await _close(a, b)


async def test_a_hold_its_replica_never_settled_is_released_by_a_sweep(where: str) -> None:
    crashed, alive = _open(where, hold_ttl_s=1.0), _open(where)
    limits = {("user", "u"): 1.0}
    try:
        hold = await crashed.spend.reserve(0.8, user="u", key=None, limits=limits)
        with pytest.raises(BudgetExhausted, match="in flight"):
            await alive.spend.reserve(0.5, user="u", key=None, limits=limits)
        assert await alive.sweep() == 0  # not yet expired
        await asyncio.sleep(1.1)
        assert await alive.sweep() == 1
        assert await alive.sweep() == 0  # once
        await alive.spend.reserve(0.5, user="u", key=None, limits=limits)  # freed
        crashed.spend.settle(hold, 0.1, user="u", key=None)  # a late settlement: paid, not
        await crashed.drain()                                # released a second time
        spent = (await alive.prefetch(Lookup(scopes=(("user", "u"),)))).snapshot.spent
        assert spent[("user", "u")] == pytest.approx(0.5 + 0.1)
    finally:
        await _close(crashed, alive)
