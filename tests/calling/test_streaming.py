"""Streaming: the first token passes straight through; escalation only before it; a stream that
breaks off afterwards is an error; buffered tasks are judged whole first."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from taskroute.exceptions import ChainExhausted, UpstreamError
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.router import Router

from .support import (
    MemoryStore,
    RouterFactory,
    ask,
    assert_all_recorded,
    eventually,
    make_policy,
)

LONG = "tell me about " + " ".join(f"word{i}" for i in range(7))


async def test_first_token_reaches_the_caller_before_the_answer_is_done(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """(The refusal hold off: `test_hold.py` has what holding the opening costs.)"""
    upstream.set_profile("small", ModelProfile(first_token_s=0.01, tokens_per_s=50))
    stream = make_router(calling_extra="  hold for refusal: false").stream(ask(LONG),
                                                                          task="chat")
    loop = asyncio.get_running_loop()
    started = loop.time()
    arrivals: list[float] = []
    async for chunk in stream:
        if chunk.delta_text:
            arrivals.append(loop.time() - started)
    assert len(arrivals) >= 8
    assert arrivals[0] < 0.1 and arrivals[-1] - arrivals[0] > 0.1
    record = stream.record
    assert record.status == "ok" and record.first_token_s is not None
    assert record.first_token_s < record.latency_s / 2
    (attempt,) = record.attempts
    assert attempt.first_token_s is not None and attempt.output_tokens > 0
    assert_all_recorded(record, upstream)


async def test_model_is_known_after_start(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    stream = make_router().stream(ask(), task="chat")
    assert stream.model is None and stream.decision.model == "sim/small"
    await stream.start()
    assert stream.model == "sim/small"
    assert "".join([c.delta_text async for c in stream]).startswith("small answers")


async def test_the_label_is_known_before_the_model_is_called(
    upstream: SimulatedUpstream,
) -> None:
    policy = make_policy(upstream)
    policy = replace(policy, tiers=tuple(replace(t, label=f"{t.name} label")
                                         for t in policy.tiers))
    router = Router(policy, classifier=False)
    stream = router.stream(ask(), task="chat")
    assert stream.label == stream.decision.label == "fast label"  # show it while start() runs
    assert sum(upstream.requests.values()) == 0  # nothing called yet
    assert "".join([c.delta_text async for c in stream]).startswith("small answers")
    assert stream.record.decision.label == "fast label"
    await router.aclose()


async def test_escalates_before_the_first_byte_on_errors(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.fail("small", 503)
    upstream.send_malformed_sse("small-b")
    stream = make_router(retries=0).stream(ask(), task="chat")
    await stream.start()
    assert stream.model == "sim/medium"
    text = "".join([c.delta_text async for c in stream])
    assert text.startswith("medium answers")
    assert [a.status for a in stream.record.attempts] == ["error", "error", "ok"]
    assert "MalformedResponse" in (stream.record.attempts[1].error or "")
    assert_all_recorded(stream.record, upstream)


async def test_escalates_before_the_first_byte_on_a_first_token_timeout(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.answer_slowly("small", 2.0)
    upstream.answer_slowly("small-b", 2.0)
    stream = make_router(retries=0, first_token="100ms").stream(ask(), task="chat")
    await stream.start()
    assert stream.model == "sim/medium"
    assert [c async for c in stream]
    assert all("UpstreamTimeout" in (a.error or "") for a in stream.record.attempts[:2])


async def test_start_raises_when_every_model_fails_before_the_first_byte(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    store = MemoryStore()
    for model in ("small", "small-b", "medium", "large"):
        upstream.fail(model, 500)
    stream = make_router(retries=0, store=store).stream(ask(), task="chat")
    with pytest.raises(ChainExhausted) as caught:
        await stream.start()
    assert len(caught.value.attempts) == 4
    assert stream.record.status == "error" and store.entries[0].record is stream.record


async def test_a_drop_after_the_first_byte_is_an_error_not_a_short_answer(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """(With rescue off: `test_rescue.py` has the stream continued by the next model; the
    drop comes after the opening the refusal hold keeps back, as there.)"""
    upstream.set_profile("small", ModelProfile(tokens_per_s=200))
    upstream.drop_connection("small", after=9)
    store = MemoryStore()
    stream = make_router(store=store, calling_extra="  rescue streams: false").stream(
        ask(LONG), task="chat")
    received: list[str] = []
    with pytest.raises(UpstreamError):
        async for chunk in stream:
            received.append(chunk.delta_text)
    assert "".join(received)  # the caller did get the beginning
    record = stream.record
    assert record.status == "error" and record.answered_by == "sim/small"
    (attempt,) = record.attempts
    assert attempt.status == "error" and attempt.cost_usd > 0 and attempt.first_token_s
    assert store.entries[0].http_status == 502
    assert upstream.requests["medium"] == 0  # no escalation once bytes went out


async def test_buffered_stream_runs_gates_first_and_escalates(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.truncate("small")
    stream = make_router().stream(ask(LONG), task="summarization")
    await stream.start()
    assert stream.model == "sim/medium"
    text = "".join([c.delta_text async for c in stream])
    assert text.startswith("medium answers")
    assert [a.status for a in stream.record.attempts] == ["rejected", "ok"]
    assert stream.record.attempts[0].verdicts[-1].gate == "not_truncated"
    assert stream.record.total_cost_usd == pytest.approx(
        sum(a.cost_usd for a in stream.record.attempts))
    assert_all_recorded(stream.record, upstream)


async def test_buffered_stream_escalates_on_a_mid_stream_drop(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.drop_connection("small", after=3)
    upstream.drop_connection("small-b", after=3)
    stream = make_router(retries=0).stream(ask(LONG), task="summarization")
    text = "".join([c.delta_text async for c in stream])
    assert text.startswith("medium answers") and stream.record.status == "ok"
    assert stream.record.attempts[0].output_tokens >= 0


async def test_closing_a_stream_early_cancels_the_upstream_call(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.set_profile("small", ModelProfile(tokens_per_s=20))
    stream = make_router().stream(ask(LONG), task="chat")
    async for _ in stream:
        break
    await stream.aclose()
    (attempt,) = stream.record.attempts
    assert attempt.status == "cancelled" and attempt.cost_usd > 0
    assert stream.record.status == "error"
    assert await eventually(lambda: upstream.cancelled["small"] == 1)


async def test_a_streamed_json_answer_is_judged_whole_and_escalates_before_the_first_byte(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """A JSON answer is no use until it is whole: it is read whole, and invalid JSON goes to
    the next model before anything reaches the caller (live, the caller got it and [DONE])."""
    upstream.return_invalid_json("small")
    upstream.return_invalid_json("small-b")
    request = ChatRequest.from_dict({
        "messages": [{"role": "user", "content": "the capital of France, as JSON"}],
        "response_format": {"type": "json_object"}})
    stream = make_router(retries=0).stream(request, task="extraction")
    text = "".join([c.delta_text async for c in stream])
    json.loads(text)  # what the caller got parses
    assert stream.model == "sim/medium" and stream.record.status == "ok"
    assert [a.status for a in stream.record.attempts][:1] == ["rejected"]
