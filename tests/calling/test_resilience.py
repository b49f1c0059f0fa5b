"""Retries with backoff, Retry-After, circuit breaking and failover."""

from __future__ import annotations

import asyncio
import random

import pytest

from taskroute.calling.breaker import CircuitBreaker, TripHistory
from taskroute.calling.retry import RetryPolicy, is_retryable
from taskroute.exceptions import (
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import AttemptRole

from .support import RouterFactory, ask, assert_all_recorded

# -- retry, alone --------------------------------------------------------------------------------


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_retryable_errors_and_caller_errors() -> None:
    assert is_retryable(UpstreamTimeout("t"))
    assert is_retryable(UpstreamConnectionError("reset"))
    assert is_retryable(MalformedResponse("junk"))
    assert is_retryable(UpstreamStatus("x", status=503))
    assert is_retryable(RateLimited("slow down", retry_after=1))
    assert not is_retryable(UpstreamStatus("bad request", status=400))
    assert not is_retryable(UpstreamStatus("no such model", status=404))


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=10, first_s=0.1, cap_s=0.5, rng=random.Random(7))
    error = UpstreamStatus("x", status=503)
    for retry, ceiling in enumerate([0.1, 0.2, 0.4, 0.5, 0.5]):
        delays = [policy.delay(retry, error) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not fixed


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(first_s=0.01, cap_s=2.0)
    assert policy.delay(0, RateLimited("x", retry_after=1.5)) == 1.5
    assert policy.delay(0, RateLimited("x", retry_after=600)) == 2.0


async def test_caller_errors_are_not_retried() -> None:
    sleeps = Sleeps()
    roles: list[AttemptRole] = []

    async def call(role: AttemptRole) -> str:
        roles.append(role)
        raise UpstreamStatus("bad", status=400)

    with pytest.raises(UpstreamStatus):
        await RetryPolicy(retries=3, sleep=sleeps).run(call, "first")
    assert roles == ["first"] and sleeps.delays == []


async def test_retries_until_success_then_stops() -> None:
    sleeps = Sleeps()
    roles: list[AttemptRole] = []

    async def call(role: AttemptRole) -> str:
        roles.append(role)
        if len(roles) < 3:
            raise UpstreamTimeout("slow")
        return "ok"

    policy = RetryPolicy(retries=5, first_s=0.01, cap_s=1, sleep=sleeps)
    assert await policy.run(call, "first") == "ok"
    assert roles == ["first", "retry", "retry"] and len(sleeps.delays) == 2


# -- retry, against the upstream --------------------------------------------------------------


async def test_retries_the_same_model_with_backoff(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=2)
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    upstream.fail("small", 503, times=2)
    result = await router.complete(ask(), task="chat")
    assert [(a.role, a.status) for a in result.record.attempts] == [
        ("first", "error"), ("retry", "error"), ("retry", "ok")]
    assert len(sleeps.delays) == 2 and sleeps.delays[1] <= 0.04  # the policy's 40 ms cap
    assert_all_recorded(result.record, upstream)


async def test_retry_after_from_the_upstream_is_honoured(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1)
    upstream.fail("small", 429, retry_after=0.03, times=1)
    started = asyncio.get_running_loop().time()
    result = await router.complete(ask(), task="chat")
    waited = asyncio.get_running_loop().time() - started
    assert [a.status for a in result.record.attempts] == ["error", "ok"]
    assert "RateLimited" in (result.record.attempts[0].error or "")
    assert waited >= 0.03


async def test_a_retry_after_past_the_backoff_cap_fails_over_at_once(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1)
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    upstream.fail("small", 429, retry_after=120, times=1)
    result = await router.complete(ask(), task="chat")
    assert sleeps.delays == []  # waiting the 40 ms cap would only earn another 429
    assert [(a.deployment, a.role, a.status) for a in result.record.attempts] == [
        ("sim/small", "first", "error"), ("alt/small-b", "failover", "ok")]


async def test_first_token_timeout_is_an_error_that_moves_on(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0, first_token="100ms")
    upstream.answer_slowly("small", 2.0)
    result = await router.complete(ask(), task="chat")
    first = result.record.attempts[0]
    assert first.status == "error" and "UpstreamTimeout" in (first.error or "")
    assert first.latency_s < 1.0
    assert result.record.answered_by == "alt/small-b" == result.record.attempts[1].deployment
    assert result.record.stood_in_for == "sim/small"


# -- circuit breaker ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> str:
    return breaker.state  # read through a call, so each check sees the current state


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown_s=10, clock=clock)
    breaker.failure()
    assert state(breaker) == "closed" and breaker.allow()
    breaker.failure()
    assert state(breaker) == "open" and not breaker.allow()
    clock.now = 10
    assert state(breaker) == "half_open"
    assert breaker.allow()          # the one probe
    assert not breaker.allow()      # nobody else while it is out
    breaker.success()
    assert state(breaker) == "closed" and breaker.allow()


def test_a_failed_probe_reopens_and_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    breaker.failure()
    clock.now = 5
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) == "open"
    clock.now = 10
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_each_trip_is_kept_with_its_reason_retry_time_and_close() -> None:
    clock, wall = Clock(), Clock()
    wall.now = 1000.0
    trips = TripHistory(kept=3, wall=wall)
    breaker = CircuitBreaker(failures=2, cooldown_s=10, clock=clock, deployment="sim/a",
                             trips=trips)
    breaker.failure("UpstreamHTTPError: 503")
    assert trips.recent() == []                       # one failure is no trip
    breaker.failure("UpstreamHTTPError: 502")
    (trip,) = trips.recent()
    lone = TripHistory()
    CircuitBreaker(failures=1, cooldown_s=1, deployment="b", trips=lone).failure("Timeout")
    assert lone.recent()[0].reason == "failed: Timeout"
    assert (trip.deployment, trip.opened_at, trip.retry_at, trip.by, trip.closed_at) == (
        "sim/a", 1000.0, 1010.0, "here", None)
    assert trip.reason == "2 failures in a row; the last: UpstreamHTTPError: 502"
    clock.now, wall.now = 10, 1010.0
    assert breaker.allow()
    breaker.failure("TimeoutError: read")             # the probe failed: a second trip
    assert trips.recent()[0].reason == "the probe failed: TimeoutError: read"
    clock.now, wall.now = 20, 1021.5
    assert breaker.allow()
    breaker.success()
    assert trips.recent()[0].closed_at == 1021.5 and trips.recent()[1].closed_at is None
    for i in range(5):                                # bounded: the oldest fall off
        trips.heard(f"other/{i}", 30)
    assert [t.deployment for t in trips.recent()] == ["other/4", "other/3", "other/2"]
    assert trips.recent()[0].by == "replica"


async def test_circuit_opens_skips_the_deployment_then_probes_and_closes(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0, failures=2, cooldown="150ms")
    upstream.fail("small", 503)
    for _ in range(2):
        result = await router.complete(ask(), task="chat")
        assert result.record.answered_model == "sim/small"  # via alt/small-b
    assert state(router.engine.wiring.breakers["sim/small"]) == "open"
    (trip,) = router.trips.recent()
    assert trip.deployment == "sim/small" and "503" in trip.reason
    assert router.with_policy(router.policy).trips is router.trips   # a reload keeps them
    skipped = await router.complete(ask(), task="chat")
    assert skipped.record.attempts[0].status == "skipped"
    assert "CircuitOpen" in (skipped.record.attempts[0].error or "")
    assert upstream.requests["small"] == 2
    await asyncio.sleep(0.2)
    upstream.answer_normally("small")
    probed = await router.complete(ask(), task="chat")
    assert [(a.deployment, a.status) for a in probed.record.attempts] == [("sim/small", "ok")]
    assert state(router.engine.wiring.breakers["sim/small"]) == "closed"


async def test_a_failed_probe_keeps_the_circuit_open(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0, failures=1, cooldown="100ms")
    upstream.fail("small", 500)
    await router.complete(ask(), task="chat")
    await asyncio.sleep(0.12)
    probed = await router.complete(ask(), task="chat")
    assert probed.record.attempts[0].status == "error"  # the probe went out and failed
    assert router.engine.wiring.breakers["sim/small"].state == "open"


async def test_every_deployment_open_escalates_to_the_next_model(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0, failures=1, cooldown="10s")
    upstream.fail("small", 503)
    upstream.fail("small-b", 503)
    await router.complete(ask(), task="chat")
    upstream.requests.clear()
    result = await router.complete(ask(), task="chat")
    assert [a.status for a in result.record.attempts] == ["skipped", "skipped", "ok"]
    assert result.record.answered_by == "sim/medium"
    assert_all_recorded(result.record, upstream)


# -- failover ----------------------------------------------------------------------------------


async def test_fails_over_to_the_next_deployment_in_order(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.fail("small", 502)
    result = await make_router(retries=0).complete(ask(), task="chat")
    assert [(a.deployment, a.role, a.status) for a in result.record.attempts] == [
        ("sim/small", "first", "error"), ("alt/small-b", "failover", "ok")]
    assert result.record.answered_by == "alt/small-b" and not result.record.escalated
    assert result.record.stood_in_for == "sim/small"
    assert result.response.text.startswith("small-b answers")


async def test_connection_drops_and_malformed_bodies_are_retried(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.send_malformed_body("small", times=1)
    result = await make_router(retries=1).complete(ask(), task="chat")
    assert [a.status for a in result.record.attempts] == ["error", "ok"]
    assert "MalformedResponse" in (result.record.attempts[0].error or "")
    upstream.drop_connection("small", times=1)
    result = await make_router(retries=1).complete(ask(), task="chat")
    assert [a.status for a in result.record.attempts] == ["error", "ok"]
