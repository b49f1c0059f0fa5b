"""The refusal hold: a live stream's opening (40 characters, or what came in 300 ms) is held
and judged by the refusal gate before any of it goes out, so a refusal, or a break inside it,
fails over unseen; an answer that ends inside it is judged whole, by every gate; a slow model's
opening goes out when the time bound passes, nothing lost."""

from __future__ import annotations

import asyncio

import pytest

from taskroute.calling.context import CallContext
from taskroute.calling.hold import hold_for
from taskroute.decision import Decision
from taskroute.exceptions import PolicyError
from taskroute.gates.non_empty import NonEmptyGate
from taskroute.gates.refusal import RefusalGate
from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.policy.model import RefusalHold
from taskroute.policy.prose import describe_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.signals import measure

from .support import (
    POLICY,
    MemoryStore,
    RouterFactory,
    ask,
    assert_all_recorded,
    eventually,
    make_policy,
    read,
)

LONG = "tell me about " + " ".join(f"word{i}" for i in range(12))
ANSWER = "{} answers: tell me about word0 word1 word2 word3 word4."


async def test_a_refusal_on_a_live_stream_escalates_before_the_client_sees_it(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.refuse("small")
    store = MemoryStore()
    stream = make_router(store=store).stream(ask(LONG), task="chat")
    text, chunks = await read(stream)
    assert text == ANSWER.format("medium")  # not a word of "I can't help with that."
    record = stream.record
    assert record.status == "ok" and record.answered_by == "sim/medium"
    first, second = record.attempts
    assert (first.status, second.status, second.role) == ("rejected", "ok", "escalation")
    assert [v.gate for v in first.verdicts if not v.passed] == ["refusal"]
    assert first.output_tokens > 0 and first.cost_usd > 0  # the refusal was paid for
    assert sum(1 for c in chunks if c.finish_reason) == 1
    assert store.entries[0].http_status == 200
    assert_all_recorded(record, upstream)


@pytest.mark.parametrize("max_tokens", [None, 200])
async def test_a_short_answer_cut_short_is_held_whole_and_escalates_unseen(
    make_router: RouterFactory, upstream: SimulatedUpstream, max_tokens: int | None
) -> None:
    """Cut at 5 words (29 characters, finish_reason length), the answer ends inside the hold:
    it is judged whole, by not_truncated too — with no max_tokens, or one far above the cut
    (the usage read to the stream's end says so)."""
    upstream.truncate("small")
    stream = make_router().stream(ask(LONG, max_tokens=max_tokens), task="chat")
    text, chunks = await read(stream)
    assert text == ANSWER.format("medium")
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    first, second = stream.record.attempts
    assert (first.status, second.status) == ("rejected", "ok")
    assert [v.gate for v in first.verdicts if not v.passed] == ["not_truncated"]
    assert stream.record.status == "ok"


async def test_a_break_inside_the_held_opening_fails_over_unseen(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=3)  # the role and two words: all still held
    stream = make_router().stream(ask(LONG), task="chat")
    text, _ = await read(stream)
    record = stream.record
    assert text == ANSWER.format("small-b") and record.rescued_by is None
    assert [(a.deployment, a.role, a.status) for a in record.attempts] == [
        ("sim/small", "first", "error"), ("sim/small", "retry", "error"),
        ("alt/small-b", "failover", "ok")]
    assert_all_recorded(record, upstream)


async def test_a_slow_opening_goes_out_when_the_hold_times_out_and_nothing_is_lost(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """Four words a second: 40 characters would take 1.75 s to come; the hold gives up after
    100 ms, and the word being read then comes next."""
    upstream.set_profile("small", ModelProfile(tokens_per_s=4))
    router = make_router(calling_extra="  hold for refusal: {chars: 40, at most: 100ms}")
    stream = router.stream(ask(LONG), task="chat")
    loop = asyncio.get_running_loop()
    started = loop.time()
    arrivals: list[tuple[float, str]] = []
    async for chunk in stream:
        if chunk.delta_text:
            arrivals.append((loop.time() - started, chunk.delta_text))
    assert "".join(t for _, t in arrivals) == ANSWER.format("small")
    assert arrivals[0][0] < 1.2 and arrivals[0][1] == "small "   # the first word, not seven
    assert arrivals[-1][0] > 2.0
    assert stream.record.status == "ok" and len(stream.record.attempts) == 1


async def test_closing_a_stream_while_its_next_chunk_is_being_read_cancels_the_call(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.set_profile("small", ModelProfile(tokens_per_s=2))
    router = make_router(calling_extra="  hold for refusal: {at most: 50ms}")
    stream = router.stream(ask(LONG), task="chat")
    await stream.start()  # the hold gave up waiting: a read is under way
    await stream.aclose()
    (attempt,) = stream.record.attempts
    assert attempt.status == "cancelled"
    assert await eventually(lambda: upstream.cancelled["small"] == 1)


async def test_with_the_hold_off_a_live_refusal_goes_out_and_is_logged_rejected(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.refuse("small")
    router = make_router(calling_extra="  hold for refusal: false")
    stream = router.stream(ask(LONG), task="chat")
    text, _ = await read(stream)
    assert text == "I can't help with that."
    assert stream.record.status == "rejected"
    assert "held" not in describe_policy(router.policy)
    assert "first 40 characters" in describe_policy(make_router().policy)


def test_the_hold_is_the_tasks_else_the_policys_and_only_for_opening_gates(
    upstream: SimulatedUpstream,
) -> None:
    policy = make_policy(upstream, calling_extra="  hold for refusal: {chars: 60}")
    assert policy.calling.refusal_hold == RefusalHold(chars=60, at_most_s=0.3)
    assert load_default_policy().calling.refusal_hold == RefusalHold(40, 0.3)
    text = POLICY.format(url=upstream.url, retries=0, failures=3, cooldown="1s",
                         first_token="2s", calling_extra="", stall="5s").replace(
        "chat: {tier: fast, gates: [non_empty, refusal, not_truncated]}",
        "chat: {tier: fast, gates: [non_empty, refusal], hold for refusal: false}")
    own = parse_policy(text, file="<test>")
    for task, gates, want in (("chat", (RefusalGate(),), None),
                              ("summarization", (RefusalGate(),), RefusalHold()),
                              ("summarization", (NonEmptyGate(),), None)):
        decision = Decision(task=task, task_source="caller", task_confidence=None,
                            signals=measure(ask()), tier="fast", model="sim/small",
                            chain=("sim/small",), estimated_cost_usd=0.0, reasons=(),
                            policy=own.name, routed=True)
        assert hold_for(CallContext(ask(), decision, own), gates) == want, task


@pytest.mark.parametrize("value", ["{chars: -1}", "{chars: 40, soon: 1s}", "lots"])
def test_a_bad_hold_is_a_clear_policy_error(upstream: SimulatedUpstream, value: str) -> None:
    with pytest.raises(PolicyError, match="hold for refusal"):
        make_policy(upstream, calling_extra=f"  hold for refusal: {value}")


async def test_an_answer_held_whole_is_judged_once_not_again_when_it_ends(
    make_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskroute.calling import hold, streaming

    runs: list[str] = []
    for module in (hold, streaming):
        real = module.run_gates

        async def counted(*args: object, _real: object = real, _at: str = module.__name__,
                          **kw: object) -> object:
            runs.append(_at)
            return await _real(*args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(module, "run_gates", counted)
    stream = make_router().stream(ask("hi"), task="chat")  # a short answer: all of it held
    text, _ = await read(stream)
    assert text
    (attempt,) = stream.record.attempts
    assert attempt.status == "ok" and {v.gate for v in attempt.verdicts} >= {"refusal"}
    assert runs == ["taskroute.calling.hold"]
