"""Streams that survive: a stall is a fault; a stream that breaks or stalls after its answer
began is continued by the next model in the same stream (an Anthropic model from a prefill,
any other from the partial answer plus an instruction), the seam's overlap removed; a half-sent
tool call or JSON answer is not continued; a live answer that fails its gates is logged so."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from taskroute.calling.assemble import Tally
from taskroute.calling.rescue import CONTINUE_INSTRUCTION, Seam, continuation, overlap, plan
from taskroute.exceptions import UpstreamError
from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.policy.prose import describe_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk
from taskroute.router import Router

from .support import POLICY, MemoryStore, RouterFactory, ask, assert_all_recorded, read

LONG = "tell me about " + " ".join(f"word{i}" for i in range(12))
# The stand-in's answer to LONG is 59 characters in 10 words, each a chunk after the role's.
# A break within the first 40 characters is inside the opening the refusal hold keeps back
# (calling/hold.py), so it fails over unseen; these break after the role and 8 words, when
# 47 characters have gone out.
PAST_HOLD = 9


def finish(chunks: list[StreamChunk]) -> str | None:
    """The stream's finish reason (the usage chunk may follow it)."""
    reasons = [c.finish_reason for c in chunks if c.finish_reason]
    assert len(reasons) <= 1, reasons  # one end, however many models wrote the answer
    return reasons[0] if reasons else None


async def test_a_drop_mid_answer_is_continued_by_the_next_model_in_the_same_stream(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=PAST_HOLD)  # 8 words out, then gone
    store = MemoryStore()
    stream = make_router(store=store).stream(ask(LONG), task="chat")
    text, chunks = await read(stream)
    record = stream.record
    assert record.status == "ok" and finish(chunks) == "stop"
    first, rescuer = record.attempts
    assert (first.deployment, first.status, first.role) == ("sim/small", "error", "first")
    assert (rescuer.deployment, rescuer.status, rescuer.role) == ("sim/medium", "ok", "rescue")
    assert first.output_tokens > 0 and rescuer.output_tokens > 0  # each pays for its part
    # the usage the caller gets is the whole answer's: both calls', as the log sums them
    usage = [c.usage for c in chunks if c.usage][-1]
    assert usage is not None
    assert usage.completion_tokens == first.output_tokens + rescuer.output_tokens
    assert usage.prompt_tokens == first.input_tokens + rescuer.input_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert sum(a.output_tokens for a in record.attempts) == usage.completion_tokens
    assert record.rescued_by == "sim/medium" and record.seam_chars
    sent = text[:record.seam_chars]
    assert sent.startswith("small answers") and text[record.seam_chars:]
    # the continuation was asked for: the partial answer, then the instruction to go on
    turns = upstream.last_body["medium"]["messages"]
    assert turns[-2] == {"role": "assistant", "content": sent}
    assert turns[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
    assert not any("role" in (c.data["choices"][0].get("delta") or {})
                   for c in chunks[1:] if c.data.get("choices"))  # one role announcement
    assert store.entries[0].http_status == 200
    assert_all_recorded(record, upstream)


async def test_a_stall_mid_answer_is_a_fault_and_is_rescued(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.stall("small", after=PAST_HOLD, seconds=30)
    assert load_default_policy().calling.stall_timeout_s == 20  # the default, made short here
    stream = make_router(stall="200ms").stream(ask(LONG), task="chat")
    started = time.monotonic()
    _text, chunks = await read(stream)
    assert time.monotonic() - started < 3  # not the 30 s stall, nor the 5 s total timeout
    first, rescuer = stream.record.attempts
    assert first.status == "error" and "StreamStalled" in (first.error or "")
    assert rescuer.role == "rescue" and stream.record.status == "ok"
    assert finish(chunks) == "stop"


async def test_a_task_can_set_its_own_stall_timeout(
    upstream: SimulatedUpstream,
) -> None:
    text = POLICY.format(url=upstream.url, retries=0, failures=3, cooldown="200ms",
                         first_token="2s", calling_extra="", stall="5s").replace(
        "chat: {tier: fast, gates: [non_empty, refusal, not_truncated]}",
        "chat: {tier: fast, gates: [non_empty, refusal, not_truncated], stall: 150ms}")
    policy = parse_policy(text, file="<test>")
    assert policy.tasks["chat"].stall_s == pytest.approx(0.15)
    upstream.stall("small", after=PAST_HOLD, seconds=30)
    router = Router(policy, classifier=False)
    try:
        stream = router.stream(ask(LONG), task="chat")
        _, chunks = await asyncio.wait_for(read(stream), 3)
        assert "0.15s" in (stream.record.attempts[0].error or "")
        assert finish(chunks) == "stop"
    finally:
        await router.aclose()


async def test_an_anthropic_model_continues_from_a_prefill(upstream: SimulatedUpstream) -> None:
    text = POLICY.format(url=upstream.url, retries=0, failures=3, cooldown="200ms",
                         first_token="2s", calling_extra="", stall="5s").replace(
        "fast: {use: sim/small, escalate to: [sim/medium, sim/large]}",
        "fast: {use: sim/small, escalate to: [ant/claude-sim]}")
    router = Router(parse_policy(text, file="<test>"), classifier=False)
    upstream.drop_connection("small", after=PAST_HOLD)
    try:
        stream = router.stream(ask(LONG), task="chat")
        text_out, chunks = await read(stream)
    finally:
        await router.aclose()
    record = stream.record
    assert record.rescued_by == "ant/claude-sim" and record.status == "ok"
    sent = text_out[:record.seam_chars]
    body = upstream.last_body["claude-sim"]
    assert body["messages"][-1]["role"] == "assistant"  # a prefill, no extra instruction
    prefill = body["messages"][-1]["content"]
    prefill = prefill if isinstance(prefill, str) else prefill[0]["text"]
    assert prefill == sent.rstrip()
    assert finish(chunks) == "stop"


async def test_a_half_sent_tool_call_is_not_continued(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=3)
    tools = [{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {
            "query": {"type": "string"}}}}}]
    request = ChatRequest.from_dict({
        "messages": [{"role": "user", "content": LONG}], "tools": tools,
        "tool_choice": "required"})
    stream = make_router().stream(request, task="chat")
    with pytest.raises(UpstreamError):
        await read(stream)
    record = stream.record
    assert record.status == "error" and "not continued: a tool call" in (record.error or "")
    assert upstream.requests["medium"] == 0 and record.rescued_by is None


async def test_a_json_answer_cut_off_is_read_whole_so_fails_over_unseen(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """A streamed JSON answer is read whole before it goes out, so a drop is the first pick's
    failure (never a rescue); were one live, continuing it would not be sound (`plan`)."""
    upstream.drop_connection("small", after=4)
    request = ChatRequest.from_dict({
        "messages": [{"role": "user", "content": LONG + " as JSON"}],
        "response_format": {"type": "json_object"}})
    stream = make_router().stream(request, task="chat")
    text, _ = await read(stream)
    json.loads(text)
    assert stream.record.status == "ok" and stream.record.rescued_by is None
    assert stream.record.attempts[0].status == "error"
    half = [chunk("{\"answer\": \"Par")]
    refused = plan(request, half, tally_of(half))
    assert refused.action == "refuse" and "JSON" in refused.reason


async def test_rescue_can_be_switched_off(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=PAST_HOLD)
    stream = make_router(calling_extra="  rescue streams: false").stream(ask(LONG), task="chat")
    with pytest.raises(UpstreamError):
        await read(stream)
    assert "rescue streams: false" in (stream.record.error or "")
    assert "continued by the next model" not in describe_policy(make_router(
        calling_extra="  rescue streams: false").policy)
    assert "continued by the next model" in describe_policy(make_router().policy)


async def test_when_no_model_can_continue_the_stream_ends_with_the_first_error(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=PAST_HOLD)
    for model in ("medium", "large"):
        upstream.fail(model, 503)
    stream = make_router(retries=0).stream(ask(LONG), task="chat")
    with pytest.raises(UpstreamError):
        await read(stream)
    record = stream.record
    assert record.status == "error" and "no model could continue it" in (record.error or "")
    assert [a.role for a in record.attempts] == ["first", "rescue", "escalation"]


WORDY = " ".join(f"extraordinarily{i}" for i in range(8))   # its answer: 10 long words


@pytest.mark.parametrize("max_tokens", [None, 200])
async def test_a_long_answer_cut_short_is_continued_by_the_next_model(
    make_router: RouterFactory, upstream: SimulatedUpstream, max_tokens: int | None
) -> None:
    """Cut at 5 long words (past the refusal hold's 40 characters, so gone out) with
    finish_reason length, short of the caller's limit (none, or 200 tokens): the next model
    continues it in the same stream, given what is left of the limit; the cut end never
    reaches the caller."""
    upstream.set_profile("small", ModelProfile(tokens_per_s=500))
    upstream.truncate("small")
    stream = make_router().stream(ask(WORDY, max_tokens=max_tokens), task="chat")
    text, chunks = await read(stream)
    record = stream.record
    assert finish(chunks) == "stop" and record.status == "ok"
    first, rescuer = record.attempts
    assert (first.status, rescuer.role, rescuer.status) == ("error", "rescue", "ok")
    assert "AnswerCutShort" in (first.error or "") and first.output_tokens == 5
    assert record.rescued_by == "sim/medium"
    # (the stand-in answers the instruction rather than continuing: the seam cannot be exact)
    sent = "small answers: extraordinarily0 extraordinarily1 extraordinarily2 "
    assert record.seam_chars == len(sent) and text.startswith(sent + "medium answers")
    body = upstream.last_body["medium"]
    assert body["messages"][-2:] == [{"role": "assistant", "content": sent},
                                     {"role": "user", "content": CONTINUE_INSTRUCTION}]
    assert body.get("max_tokens") == (None if max_tokens is None else max_tokens - 5)


async def test_a_cut_at_the_callers_own_limit_is_not_continued(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.set_profile("small", ModelProfile(tokens_per_s=500))
    stream = make_router().stream(ask(WORDY, max_tokens=6), task="chat")
    _, chunks = await read(stream)
    assert finish(chunks) == "length" and stream.record.status == "ok"
    assert [a.role for a in stream.record.attempts] == ["first"]
    assert upstream.requests["medium"] == 0


async def test_a_live_answer_failing_its_gates_is_logged_rejected(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """Cut short as above, with rescue off: it goes out as it came, too late to escalate."""
    upstream.set_profile("small", ModelProfile(tokens_per_s=500))
    upstream.truncate("small")
    stream = make_router(calling_extra="  rescue streams: false").stream(ask(WORDY),
                                                                         task="chat")
    _, chunks = await read(stream)
    assert finish(chunks) == "length"
    record = stream.record
    assert record.status == "rejected"
    (attempt,) = record.attempts
    assert attempt.status == "rejected"
    assert [v.gate for v in attempt.verdicts if not v.passed] == ["not_truncated"]


# -- the seam ------------------------------------------------------------------------------------


def chunk(text: str, finish: str | None = None, role: bool = False) -> StreamChunk:
    delta: dict[str, object] = {"content": text}
    if role:
        delta["role"] = "assistant"
    return StreamChunk({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


@pytest.mark.parametrize(("sent", "more", "dropped"), [
    ("The capital of France is", "The capital of France is Paris.", 24),   # started over
    ("It rains a lot in Bergen because", "in Bergen because of the mountains", 17),
    ("Say the word", "the sky", 0),              # a short repeat may be a coincidence
    ("one two ", " three", 1),                  # the prefill left the space off
    ("one two", " three", 0),
    ("", "anything", 0),
])
def test_overlap(sent: str, more: str, dropped: int) -> None:
    assert overlap(sent, more) == dropped


def test_the_seam_holds_the_continuation_until_it_can_trim_it() -> None:
    seam = Seam("It rains a lot in Bergen because")
    assert seam.take(chunk("", role=True)) == []  # a bare role announcement goes nowhere
    assert seam.take(chunk("in Bergen ")) == []
    out = seam.take(chunk("because of the mountains.", finish="stop"))
    assert "".join(c.delta_text for c in out) == " of the mountains."
    assert seam.trimmed == len("in Bergen because") and not seam.open
    passed = chunk("more")
    assert seam.take(passed) == [passed]


def test_continuation_requests() -> None:
    request = ask("hi")
    prefill = continuation(request, "Hello there, ", prefill=True)
    assert prefill.messages[-1].role == "assistant"
    assert prefill.messages[-1].content == "Hello there,"
    instructed = continuation(request, "Hello there, ", prefill=False)
    assert [m.role for m in instructed.messages[-2:]] == ["assistant", "user"]
    assert instructed.messages[-2].content == "Hello there, "
    assert continuation(request, "", prefill=False) is request


def tally_of(chunks: list[StreamChunk]) -> Tally:
    tally = Tally()
    for c in chunks:
        tally.add(c)
    return tally


MEDIUM_SAYS = " ".join(f"continuing{i}" for i in range(30))  # cut to 15 words: past the seam


async def test_a_rescuer_cut_short_and_rescued_again_is_billed_for_its_own_tokens(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """small drops mid-answer; medium continues it and is cut short (finish_reason length,
    short of any limit) past the seam; large continues that. Each call is billed for its own
    tokens, and the usage the caller gets is the three calls' sum, each counted once."""
    upstream.drop_connection("small", after=PAST_HOLD)
    upstream.set_profile("medium", ModelProfile(tokens_per_s=500))
    upstream.behave("medium", say=MEDIUM_SAYS, truncate=True)
    stream = make_router().stream(ask(LONG), task="chat")
    text, chunks = await read(stream)
    record = stream.record
    assert record.status == "ok" and finish(chunks) == "stop"
    _first, second, third = record.attempts
    assert [a.role for a in record.attempts] == ["first", "rescue", "rescue"]
    assert "AnswerCutShort" in (second.error or "") and third.deployment == "sim/large"
    assert "continuing14" in text and "continuing15" not in text
    assert second.output_tokens == 15  # medium's own tokens, not small's as well
    usage = [c.usage for c in chunks if c.usage][-1]
    assert usage is not None
    assert usage.completion_tokens == sum(a.output_tokens for a in record.attempts)
    assert usage.prompt_tokens == sum(a.input_tokens for a in record.attempts)


async def test_a_rescuer_cut_at_the_callers_limit_ends_the_stream_with_usage_counted_once(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """small drops mid-answer; medium continues it, given what is left of max_tokens, and is
    cut there: that is the caller's own limit, so the stream ends `length`, and the usage the
    caller gets is both calls' tokens, each counted once."""
    upstream.drop_connection("small", after=PAST_HOLD)
    upstream.set_profile("medium", ModelProfile(tokens_per_s=500))
    upstream.answer_with("medium", MEDIUM_SAYS)
    stream = make_router().stream(ask(LONG, max_tokens=30), task="chat")
    _, chunks = await read(stream)
    record = stream.record
    assert finish(chunks) == "length"
    first, second = record.attempts
    assert second.role == "rescue"
    assert first.output_tokens + second.output_tokens == 30  # the whole answer's limit
    usage = [c.usage for c in chunks if c.usage][-1]
    assert usage is not None
    assert usage.completion_tokens == first.output_tokens + second.output_tokens
    assert usage.prompt_tokens == first.input_tokens + second.input_tokens


async def test_a_continuation_cut_short_before_its_seam_is_read_is_continued_again(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """small drops mid-answer; medium's continuation is cut short (finish_reason length, no
    limit asked) within the characters the seam holds back: that cut is judged like any
    other, and large continues it, rather than the stream ending cut off."""
    upstream.drop_connection("small", after=PAST_HOLD)
    upstream.truncate("medium")
    stream = make_router().stream(ask(LONG), task="chat")
    text, chunks = await read(stream)
    record = stream.record
    assert [a.role for a in record.attempts] == ["first", "rescue", "rescue"]
    assert record.status == "ok" and finish(chunks) == "stop"
    assert "AnswerCutShort" in (record.attempts[1].error or "")
    assert record.rescued_by == "sim/large" and text.rstrip().endswith(".")
    usage = [c.usage for c in chunks if c.usage][-1]
    assert usage is not None
    assert usage.completion_tokens == sum(a.output_tokens for a in record.attempts)
