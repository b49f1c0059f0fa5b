"""The refusal hold: a live stream's opening (40 characters, or what came in 300 ms) is held
and judged by the refusal gate before any of it goes out, so a refusal, or a break inside it,
fails over unseen; an answer that ends inside it is judged whole, by every gate; a slow model's
opening goes out when the time bound passes, nothing lost."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from taskroute.calling.context import CallContext
from taskroute.calling.hold import hold_for, opening_gates
from taskroute.decision import Decision
from taskroute.exceptions import PolicyError
from taskroute.gates.non_empty import NonEmptyGate
from taskroute.gates.refusal import RefusalGate
from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.policy.model import GateSpec, RefusalHold
from taskroute.policy.prose import describe_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.records import CLIENT_CLOSED, GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk
from taskroute.router import Router
from taskroute.signals import estimate_tokens, measure

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
        assert hold_for(CallContext(ask(), decision, own), opening_gates(gates)) == want, task


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


class Seen:
    """An opening gate that passes everything and keeps each answer it judged, with a copy of
    its tool calls as they were then."""

    name = "seen"
    judges_opening = True

    def __init__(self) -> None:
        self.judged: list[tuple[ChatResponse, list[dict[str, Any]] | None]] = []

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        self.judged.append((answer, copy.deepcopy(answer.tool_calls)))
        return GateVerdict(self.name, True)


def seen_router(upstream: SimulatedUpstream, store: MemoryStore, gate: Seen, *,
                hold: bool) -> Router:
    policy = make_policy(upstream, calling_extra="" if hold else "  hold for refusal: false")
    chat = dataclasses.replace(policy.tasks["chat"], gates=(
        GateSpec("non_empty"), GateSpec("refusal"), GateSpec("seen")))
    policy = dataclasses.replace(policy, log_content=True,
                                 tasks=MappingProxyType({**policy.tasks, "chat": chat}))
    return Router(policy, classifier=False, store=store, gates={"seen": gate})


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}


def streamed(chunks: list[StreamChunk]) -> tuple[str, str, list[dict[str, Any]]]:
    """What the caller was sent: the text, the text and every tool call's arguments as they
    came, and the tool calls put together."""
    text: list[str] = []
    seen: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.data.get("choices") or ():
            piece = choice["delta"].get("content") or ""
            text.append(piece)
            seen.append(piece)
            for part in choice["delta"].get("tool_calls") or ():
                call = calls.setdefault(part["index"], {"id": "", "type": "function",
                                                        "function": {"name": "", "arguments": ""}})
                call["id"] = part.get("id") or call["id"]
                call["function"]["name"] += part["function"].get("name") or ""
                call["function"]["arguments"] += part["function"].get("arguments") or ""
                seen.append(part["function"].get("arguments") or "")
    return "".join(text), "".join(seen), [calls[i] for i in sorted(calls)]


@pytest.mark.parametrize("hold", [True, False], ids=["held", "not held"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool calls"])
async def test_the_record_judges_and_logs_exactly_what_the_caller_was_streamed(
    upstream: SimulatedUpstream, hold: bool, tools: bool
) -> None:
    """The record's answer is the tally the hold judged the opening off, gone on chunk by
    chunk: the logged answer is the streamed text (the tool calls' arguments too) and the
    gates judge the whole of what went out; the opening the hold judged stays as it was."""
    store, gate = MemoryStore(), Seen()
    router = seen_router(upstream, store, gate, hold=hold)
    request = ask(LONG, **({"tools": [WEATHER]} if tools else {}))
    try:
        stream = router.stream(request, task="chat")
        _, chunks = await read(stream)
    finally:
        await router.aclose()
    text, seen, calls = streamed(chunks)
    assert bool(calls) == tools and (text == ANSWER.format("small") or tools)
    (entry,) = store.entries
    assert entry.answer == seen and entry.record.status == "ok"
    (attempt,) = entry.record.attempts
    assert {v.gate for v in attempt.verdicts} == {"non_empty", "refusal", "seen"}
    whole, _ = gate.judged[-1]
    assert whole.text == text and (whole.tool_calls or []) == calls
    assert whole.finish_reason == ("tool_calls" if tools else "stop")
    assert len(gate.judged) == (2 if hold else 1)
    if hold:  # the opening: what was held, as it was when judged
        opening, its_calls = gate.judged[0]
        assert opening.finish_reason is None and text.startswith(opening.text)
        assert opening.tool_calls == its_calls
        assert not tools or its_calls != calls  # (its tool call was half-written then)


async def test_a_stream_closed_while_its_held_opening_goes_out_logs_only_what_went_out(
    upstream: SimulatedUpstream,
) -> None:
    """The live call's tally took the held chunks in as they were held; a caller that hangs
    up part-way through them was given only some: the log and the bill say those."""
    store, gate = MemoryStore(), Seen()
    router = seen_router(upstream, store, gate, hold=True)
    try:
        stream = router.stream(ask(LONG), task="chat")
        await stream.start()
        given = [await anext(stream) for _ in range(3)]
        await stream.aclose()
    finally:
        await router.aclose()
    (entry,) = store.entries
    text = "".join(c.delta_text for c in given)
    assert text and ANSWER.format("small").startswith(text)
    assert len(gate.judged[0][0].text) > len(text)  # more had been held than was given
    assert entry.answer == text and entry.record.error == CLIENT_CLOSED
    (attempt,) = entry.record.attempts
    assert attempt.status == "cancelled" and attempt.output_tokens == estimate_tokens(text)


async def test_a_rescued_stream_is_judged_and_logged_as_the_caller_got_it(
    upstream: SimulatedUpstream,
) -> None:
    """Two calls wrote the answer: the record judges the whole of it, its usage the one the
    caller got (both calls'), and logs its text, seam and all."""
    upstream.drop_connection("small", after=9)  # past the held opening: 47 characters out
    store, gate = MemoryStore(), Seen()
    router = seen_router(upstream, store, gate, hold=True)
    try:
        stream = router.stream(ask(LONG), task="chat")
        text, chunks = await read(stream)
    finally:
        await router.aclose()
    (entry,) = store.entries
    assert entry.record.rescued_by == "sim/medium" and entry.answer == text
    whole, _ = gate.judged[-1]
    assert whole.text == text and whole.finish_reason == "stop"
    usage = [c.usage for c in chunks if c.usage][-1]
    assert whole.usage == usage and usage is not None
    assert usage.completion_tokens == sum(a.output_tokens for a in entry.record.attempts)
