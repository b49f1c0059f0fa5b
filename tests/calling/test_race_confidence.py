"""The race's confidence when the caller did not ask for logprobs: taskroute asks for them
itself (and keeps them from the caller), and estimates a confidence where the provider has
none to give (Anthropic). Against the stand-in upstream on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from taskroute.policy.loader import parse_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store import SqliteStore

POLICY = """
name: race-confidence-tests
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
  ant: {{api: anthropic, base url: '{url}'}}
models:
  sim/small: {{tier: fast, price: {{input: 1, output: 2}}}}
  ant/haiku-sim: {{tier: fast_ant, price: {{input: 1, output: 2}}}}
  sim/large: {{tier: strong, price: {{input: 20, output: 40}}}}
  sim/grader: {{tier: strong, price: {{input: 1, output: 2}}}}
tiers:
  fast: {{use: sim/small, escalate to: [sim/large]}}
  fast_ant: {{use: ant/haiku-sim, escalate to: [sim/large]}}
  strong: {{use: sim/large}}
tasks:
  classification:
    tier: fast
    gates: [non_empty]
    race: {{against: sim/large, min confidence: 0.9}}
  extraction:
    tier: fast_ant
    gates: [non_empty]
    race: {{against: sim/large, min confidence: 0.9}}
  qa:
    tier: fast_ant
    gates: [non_empty]
    race: {{against: sim/large, min confidence: 0.9, judge: sim/grader}}
  summarization:
    tier: fast
    gates: [non_empty, {{logprob: {{min confidence: 0.8}}}}]
    buffer stream: true
classifier: false
when unsure: classification
calling: {{retries: 0}}
"""
EASY = "[difficulty=0.1] Is this spam: win a free prize now"
HARD = "[difficulty=0.9] Is this spam: the quarterly report attached"


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    profiles = {"small": ModelProfile(first_token_s=0.02, skill=0.5),
                "haiku-sim": ModelProfile(first_token_s=0.02, skill=0.5),
                "large": ModelProfile(first_token_s=0.3, skill=0.95)}
    async with SimulatedUpstream(profiles) as up:
        yield up


@pytest.fixture
async def router(upstream: SimulatedUpstream) -> AsyncIterator[Router]:
    built = Router(parse_policy(POLICY.format(url=upstream.url)), classifier=False)
    yield built
    await built.aclose()


def ask(text: str, **fields: Any) -> ChatRequest:
    return ChatRequest.from_prompt(text, **fields)


async def test_cheap_openai_model_wins_the_race_without_client_logprobs(
    router: Router, upstream: SimulatedUpstream
) -> None:
    request = ask(EASY)
    result = await router.complete(request, task="classification")
    record = result.record
    assert record.race_winner == "cheap" and record.answered_by == "sim/small"
    assert upstream.last_body["small"]["logprobs"] is True       # taskroute asked upstream
    assert request.extra == {}                                   # the caller's request as sent
    assert result.response.logprobs is None                      # and its answer has none
    assert result.response.to_dict()["choices"][0].get("logprobs") is None  # stripped (null)
    assert record.confidence_source == "logprobs" and record.race_confidence == pytest.approx(0.97)
    verdict = next(v for v in record.attempts[0].verdicts if v.gate == "race_confidence")
    assert verdict.passed and "from logprobs" in verdict.reason


async def test_cheap_openai_model_with_low_logprobs_loses(
    router: Router, upstream: SimulatedUpstream
) -> None:
    result = await router.complete(ask(HARD), task="classification")
    assert result.record.race_winner == "strong"
    cheap = result.record.attempts[0]
    assert cheap.status == "rejected"
    verdict = next(v for v in cheap.verdicts if v.gate == "race_confidence")
    assert not verdict.passed and "0.45 from logprobs" in verdict.reason


async def test_logprobs_are_kept_when_the_client_asked(
    router: Router, upstream: SimulatedUpstream
) -> None:
    result = await router.complete(ask(EASY, logprobs=True), task="classification")
    assert result.record.race_winner == "cheap"
    assert result.response.logprobs is not None and result.response.logprobs["content"]
    stream = router.stream(ask(EASY, logprobs=True), task="classification")
    chunks = [chunk async for chunk in stream]
    assert any(c.data["choices"] and c.data["choices"][0].get("logprobs") for c in chunks)


async def test_a_raced_stream_replays_the_winner_without_logprobs_it_was_not_asked_for(
    router: Router, upstream: SimulatedUpstream
) -> None:
    stream = router.stream(ask(EASY), task="classification")
    chunks = [chunk async for chunk in stream]
    assert stream.record.race_winner == "cheap"
    assert "".join(c.delta_text for c in chunks).startswith("small answers")
    assert not any(c.get("logprobs") for chunk in chunks for c in chunk.data["choices"])


async def test_the_logprob_gate_checks_when_the_client_did_not_ask(
    router: Router, upstream: SimulatedUpstream
) -> None:
    request = ask(HARD)
    result = await router.complete(request, task="summarization")
    cheap = result.record.attempts[0]
    assert cheap.model == "sim/small" and cheap.status == "rejected"
    gate = next(v for v in cheap.verdicts if v.gate == "logprob")
    assert not gate.passed and gate.confidence == pytest.approx(0.45)
    assert result.record.answered_by == "sim/large" and result.response.logprobs is None
    assert request.extra == {}


async def test_a_buffered_stream_is_gated_on_logprobs_and_replayed_without_them(
    router: Router, upstream: SimulatedUpstream
) -> None:
    stream = router.stream(ask(EASY), task="summarization")
    chunks = [chunk async for chunk in stream]
    assert upstream.last_body["small"]["logprobs"] is True
    gate = next(v for v in stream.record.attempts[0].verdicts if v.gate == "logprob")
    assert gate.passed and gate.confidence == pytest.approx(0.97)
    assert not any(c.get("logprobs") for chunk in chunks for c in chunk.data["choices"])


async def test_an_anthropic_cheap_model_wins_on_an_easy_prompt(
    router: Router, upstream: SimulatedUpstream
) -> None:
    result = await router.complete(ask(EASY), task="extraction")
    record = result.record
    assert record.race_winner == "cheap" and record.answered_by == "ant/haiku-sim"
    assert "logprobs" not in upstream.last_body["haiku-sim"]     # not a Messages API field
    assert record.confidence_source == "estimate"
    assert record.race_confidence == pytest.approx(0.95)
    verdict = next(v for v in record.attempts[0].verdicts if v.gate == "race_confidence")
    assert verdict.passed and "from estimate (no warning sign" in verdict.reason
    assert {a.model: a.status for a in record.attempts}["sim/large"] == "cancelled"


async def test_an_anthropic_cheap_model_that_hedges_loses_on_a_hard_prompt(
    router: Router, upstream: SimulatedUpstream
) -> None:
    result = await router.complete(ask(HARD), task="extraction")
    record = result.record
    assert record.race_winner == "strong" and record.answered_by == "sim/large"
    cheap = record.attempts[0]
    assert cheap.model == "ant/haiku-sim" and cheap.status == "rejected"
    verdict = next(v for v in cheap.verdicts if v.gate == "race_confidence")
    assert not verdict.passed and "from estimate (wording" in verdict.reason
    assert "hedges" in verdict.reason
    assert record.confidence_source == "estimate" and (record.race_confidence or 1) < 0.5


async def test_a_race_judge_grades_an_answer_without_logprobs(
    router: Router, upstream: SimulatedUpstream
) -> None:
    # The simulated grader echoes the grading prompt, so the question's leading number is its
    # score: 9/10 clears 0.9 (below the estimate's 0.95, so the judge decides); 4/10 does not.
    won = await router.complete(ask("[difficulty=0.1] 9 lives of a cat"), task="qa")
    assert won.record.race_winner == "cheap" and won.record.confidence_source == "judge"
    assert won.record.race_confidence == pytest.approx(0.9)
    cheap = won.record.attempts[0]
    graded = next(v for v in cheap.verdicts if v.gate == "judge")
    assert graded.cost_usd > 0 and upstream.requests["grader"] == 1
    lost = await router.complete(ask("[difficulty=0.1] 4 plus 4"), task="qa")
    assert lost.record.race_winner == "strong" and lost.record.confidence_source == "judge"
    assert lost.record.race_confidence == pytest.approx(0.4)


async def test_a_race_judge_is_not_called_when_the_estimate_already_fails(
    router: Router, upstream: SimulatedUpstream
) -> None:
    result = await router.complete(ask(HARD), task="qa")
    assert result.record.race_winner == "strong"
    assert result.record.confidence_source == "estimate"
    assert upstream.requests["grader"] == 0


async def test_the_log_names_the_confidence_source(
    upstream: SimulatedUpstream, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "log.db")
    router = Router(parse_policy(POLICY.format(url=upstream.url)), classifier=False,
                    store=store)
    try:
        await router.complete(ask(EASY), task="extraction")
        await router.complete(ask(EASY), task="classification")
        await store.flush()
    finally:
        await router.aclose()
        await store.aclose()        # the store is ours: the router only flushes it
    with sqlite3.connect(tmp_path / "log.db") as conn:
        rows = sorted(conn.execute(
            "SELECT task, race_winner, confidence_source, race_confidence FROM requests"))
    assert rows == [("classification", "cheap", "logprobs", pytest.approx(0.97)),
                    ("extraction", "cheap", "estimate", pytest.approx(0.95))]
