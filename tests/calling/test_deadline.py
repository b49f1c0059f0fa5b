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

from .support import POLICY, RouterFactory, ask
from .test_resilience import Sleeps

ALL = ("small", "small-b", "medium", "large")


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
    for model in ALL:
        upstream.answer_slowly(model, 10.0)
    started = time.monotonic()
    with pytest.raises(ChainTimedOut, match=r"deadline of 0\.6s passed") as caught:
        await router.complete(ask(), task="chat")
    took = time.monotonic() - started
    assert 0.55 < took < 1.2, took
    assert caught.value.status_code == 504
    attempts = caught.value.record.attempts
    assert attempts and attempts[0].latency_s < 0.7  # the first call had only what was left
    assert caught.value.record.status == "error"


async def test_a_backoff_longer_than_what_is_left_is_not_slept(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1, calling_extra="  deadline: 2s")
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    router.engine.retry.first_s = router.engine.retry.cap_s = 30.0  # backoff 15-30 s
    upstream.fail("small", 503, times=1)
    result = await router.complete(ask(), task="chat")
    assert sleeps.delays == []
    assert [(a.deployment, a.status) for a in result.record.attempts] == [
        ("sim/small", "error"), ("alt/small-b", "ok")]


async def test_a_backoff_within_the_deadline_is_still_slept(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1, calling_extra="  deadline: 2s")
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    upstream.fail("small", 503, times=1)
    result = await router.complete(ask(), task="chat")
    assert len(sleeps.delays) == 1
    assert [(a.role, a.status) for a in result.record.attempts] == [
        ("first", "error"), ("retry", "ok")]


async def test_a_retry_after_longer_than_what_is_left_fails_over_at_once(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1, calling_extra="  deadline: 1s")
    sleeps = Sleeps()
    router.engine.retry.sleep = sleeps
    router.engine.retry.cap_s = 30.0  # under the cap: only the deadline says no
    upstream.fail("small", 429, retry_after=5, times=1)
    result = await router.complete(ask(), task="chat")
    assert sleeps.delays == []
    assert result.record.answered_by == "alt/small-b"


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


async def test_a_caller_may_shorten_the_deadline_but_not_lengthen_it(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=0, calling_extra="  deadline: 700ms")
    for model in ALL:
        upstream.answer_slowly(model, 10.0)
    for context, request, limit in (
        (RequestContext(deadline_s=0.2), ask(), 0.2),
        (RequestContext(), ask(metadata={"deadline_s": "0.3"}), 0.3),
        (RequestContext(deadline_s=60), ask(), 0.7),
    ):
        started = time.monotonic()
        with pytest.raises(ChainTimedOut, match=re.escape(f"deadline of {limit:g}s")):
            await router.complete(request, task="chat", context=context)
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
        for model in ALL:
            upstream.answer_slowly(model, 10.0)
        with pytest.raises(ChainTimedOut, match=r"deadline of 0\.3s"):
            await router.complete(ask(), task="chat")
    finally:
        await router.aclose()


async def test_a_stream_that_cannot_start_in_time_is_a_timeout(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router(retries=1, calling_extra="  deadline: 400ms")
    for model in ALL:
        upstream.answer_slowly(model, 10.0)
    stream = router.stream(ask(), task="chat")
    started = time.monotonic()
    with pytest.raises(ChainTimedOut):
        await stream.start()
    assert time.monotonic() - started < 0.9
