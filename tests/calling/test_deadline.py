"""A whole-request deadline: every attempt, retry and backoff fits inside it; a Retry-After
longer than what is left (or than the backoff cap) fails over at once; all-429 is a 429."""

from __future__ import annotations

import re
import time

import pytest

from taskroute.calling.deadline import Deadline, parse_seconds, shortest
from taskroute.exceptions import ChainRateLimited, ChainTimedOut, InvalidRequest
from taskroute.policy.loader import parse_policy
from taskroute.providers.base import Timeouts
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import RequestContext
from taskroute.request import ChatRequest

from .support import POLICY, RouterFactory, ask
from .test_resilience import Sleeps

ALL = ("small", "small-b", "medium", "large")


def hang_every_model(upstream: SimulatedUpstream) -> None:
    """Every deployment in the chain takes 10 s to answer: longer than any deadline here."""
    for model in ALL:
        upstream.answer_slowly(model, 10.0)


def test_timeouts_shrink_to_what_is_left() -> None:
    base = Timeouts(connect=1.0, first_token=2.0, total=5.0)
    shrunk = Deadline.starting_now(1.5).timeouts(base)
    assert shrunk.connect == 1.0 and 1.4 < shrunk.first_token <= 1.5 and shrunk.total <= 1.5
    assert Deadline.starting_now(60).timeouts(base) is base
    assert Deadline(1.0, time.monotonic() - 1).timeouts(base).total > 0  # never "no timeout"


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan", "inf", ""])
def test_a_deadline_that_is_not_a_positive_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="positive number of seconds"):
        parse_seconds(text, "X-Taskroute-Deadline")


def test_the_shortest_deadline_wins() -> None:
    assert shortest(None, 3.0, 1.5) == 1.5
    assert shortest(None, None) is None


async def test_a_hung_upstream_holds_the_client_no_longer_than_the_deadline(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    # Without the deadline: 4 deployments x 2 tries x the 2 s first-token timeout.
    router = make_router(retries=1, calling_extra="  deadline: 600ms")
    hang_every_model(upstream)
    started = time.monotonic()
    with pytest.raises(ChainTimedOut, match=r"deadline of 0\.6s passed") as caught:
        await router.complete(ask(), task="chat")
    took = time.monotonic() - started
    assert 0.55 < took < 1.2, took
    assert caught.value.status_code == 504
    attempts = caught.value.record.attempts
    assert attempts and attempts[0].latency_s < 0.7  # the first call had only what was left
    assert caught.value.record.status == "error"


@pytest.mark.parametrize(("deadline", "backoff", "fault", "slept", "attempts"), [
    pytest.param("2s", {"first_s": 30.0, "cap_s": 30.0}, {"status": 503}, 0,
                 [("first", "sim/small", "error"), ("failover", "alt/small-b", "ok")],
                 id="a backoff (15-30 s) longer than what is left is not slept"),
    pytest.param("2s", {}, {"status": 503}, 1,
                 [("first", "sim/small", "error"), ("retry", "sim/small", "ok")],
                 id="a backoff within the deadline is still slept"),
    pytest.param("1s", {"cap_s": 30.0}, {"status": 429, "retry_after": 5}, 0,
                 [("first", "sim/small", "error"), ("failover", "alt/small-b", "ok")],
                 # under the cap: only the deadline says no
                 id="a Retry-After longer than what is left fails over at once"),
])
async def test_a_wait_before_a_retry_fits_in_what_is_left(
    make_router: RouterFactory, upstream: SimulatedUpstream, deadline: str,
    backoff: dict[str, float], fault: dict[str, int], slept: int,
    attempts: list[tuple[str, str, str]],
) -> None:
    router = make_router(retries=1, calling_extra=f"  deadline: {deadline}")
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    for name, seconds in backoff.items():
        setattr(router.engine.retry, name, seconds)
    upstream.fail("small", fault["status"], retry_after=fault.get("retry_after"), times=1)
    result = await router.complete(ask(), task="chat")
    assert len(sleeps.delays) == slept
    assert [(a.role, a.deployment, a.status) for a in result.record.attempts] == attempts


async def test_every_deployment_rate_limited_is_a_429_with_the_soonest_retry_after(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1)
    for model, after in zip(ALL, (30, 20, 7, 12), strict=True):
        upstream.fail(model, 429, retry_after=after)
    started = time.monotonic()
    with pytest.raises(ChainRateLimited) as caught:
        await router.complete(ask(), task="chat")
    assert time.monotonic() - started < 1.0  # no Retry-After past the 40 ms cap was waited
    assert caught.value.status_code == 429 and caught.value.retry_after == 7
    assert len(caught.value.attempts) == 4   # one each: none retried


async def test_a_429_among_other_failures_is_not_a_429(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0)
    upstream.fail("small", 429, retry_after=3)
    for model in ALL[1:]:
        upstream.fail(model, 503)
    with pytest.raises(Exception) as caught:
        await router.complete(ask(), task="chat")
    assert not isinstance(caught.value, ChainRateLimited)
    assert getattr(caught.value, "status_code", None) == 502


@pytest.mark.parametrize(("context", "asked", "limit"), [
    pytest.param(RequestContext(deadline_s=0.2), ask(), 0.2, id="shorter, from the context"),
    pytest.param(RequestContext(), ask(metadata={"deadline_s": "0.3"}), 0.3,
                 id="shorter, from metadata"),
    pytest.param(RequestContext(deadline_s=60), ask(), 0.7, id="longer: the policy's holds"),
])
async def test_a_caller_may_shorten_the_deadline_but_not_lengthen_it(
    make_router: RouterFactory, upstream: SimulatedUpstream, context: RequestContext,
    asked: ChatRequest, limit: float,
) -> None:
    router = make_router(retries=0, calling_extra="  deadline: 700ms")
    hang_every_model(upstream)
    started = time.monotonic()
    with pytest.raises(ChainTimedOut, match=re.escape(f"deadline of {limit:g}s")):
        await router.complete(asked, task="chat", context=context)
    assert time.monotonic() - started < limit + 0.5


async def test_a_task_deadline_replaces_the_policys(upstream: SimulatedUpstream) -> None:
    text = POLICY.format(url=upstream.url, retries=0, failures=3, cooldown="200ms", stall="5s",
                         first_token="2s", calling_extra="  deadline: 10s")
    text = text.replace("chat: {tier: fast, gates: [non_empty, refusal, not_truncated]}",
                        "chat: {tier: fast, gates: [non_empty], deadline: 300ms}")
    policy = parse_policy(text, file="<test policy>")
    assert policy.deadline_for("chat") == 0.3 and policy.deadline_for("extraction") == 10.0
    from taskroute.router import Router

    router = Router(policy, classifier=False)
    try:
        hang_every_model(upstream)
        with pytest.raises(ChainTimedOut, match=r"deadline of 0\.3s"):
            await router.complete(ask(), task="chat")
    finally:
        await router.aclose()


async def test_a_stream_that_cannot_start_in_time_is_a_timeout(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1, calling_extra="  deadline: 400ms")
    hang_every_model(upstream)
    stream = router.stream(ask(), task="chat")
    started = time.monotonic()
    with pytest.raises(ChainTimedOut):
        await stream.start()
    assert time.monotonic() - started < 0.9
