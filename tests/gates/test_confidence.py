"""The race's confidence: which signal decides, and the estimate's formula, on answers built
by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from taskroute.gates.confidence import CEILING, assess, estimate
from taskroute.records import GateVerdict
from taskroute.response import ChatResponse, Choice, ResponseMessage, Usage

PASSED = (GateVerdict("non_empty", True),)


def answer(text: str = "Spam.", *, finish: str | None = "stop", tokens: int | None = None,
           logprobs: Any = None, refusal: str | None = None) -> ChatResponse:
    usage = Usage(completion_tokens=tokens, total_tokens=tokens) if tokens else None
    message = ResponseMessage(content=text, refusal=refusal)
    return ChatResponse(model="m", usage=usage, choices=[
        Choice(message=message, finish_reason=finish, logprobs=logprobs)])


def test_a_gates_own_confidence_decides_first() -> None:
    verdicts = (*PASSED, GateVerdict("judge", True, "scored it 8/10", confidence=0.8))
    sure = assess(verdicts, answer(logprobs={"content": [{"logprob": 0.0}]}), "qa")
    assert (sure.value, sure.source) == (0.8, "gate:judge")


def test_logprobs_decide_before_the_estimate() -> None:
    lp = {"content": [{"logprob": math.log(0.9)}, {"logprob": math.log(0.9)}]}
    sure = assess(PASSED, answer("I'm not sure", logprobs=lp), "qa")
    assert sure.source == "logprobs" and sure.value == pytest.approx(0.9)


def test_a_clean_answer_is_estimated_at_the_ceiling() -> None:
    sure = assess(PASSED, answer("Spam: it promises a prize.", tokens=8), "classification")
    assert sure.source == "estimate" and sure.value == pytest.approx(CEILING)
    assert "no warning sign" in sure.detail


def test_hedging_and_soft_hedges_lower_the_estimate() -> None:
    sure = estimate(PASSED, answer("I'm not sure about this, but it might be spam."), "chat")
    assert sure.value == pytest.approx(CEILING * 0.5 * 0.9)
    assert sure.detail.startswith("wording ×0.45") and "hedges" in sure.detail


@pytest.mark.parametrize(("text", "refusal"), [("I can't help with that.", None),
                                               ("", "not allowed")])
def test_a_refusal_is_no_confidence(text: str, refusal: str | None) -> None:
    assert estimate(PASSED, answer(text, refusal=refusal), "chat").value == 0.0


@pytest.mark.parametrize(("finish", "factor"), [("length", 0.6), ("content_filter", 0.0),
                                                (None, 0.8)])
def test_the_finish_reason_counts(finish: str | None, factor: float) -> None:
    sure = estimate(PASSED, answer("Spam: it promises a prize.", finish=finish), "chat")
    assert sure.value == pytest.approx(CEILING * factor)
    assert sure.detail.startswith("finish")


def test_length_far_from_the_tasks_typical_length_lowers_it() -> None:
    terse = estimate(PASSED, answer("Yes.", tokens=1), "reasoning")        # typically 1000
    assert terse.value == pytest.approx(CEILING * 0.9) and terse.detail.startswith("length")
    rambling = estimate(PASSED, answer("word " * 400, tokens=640), "classification")  # 20
    assert rambling.value == pytest.approx(CEILING * (1 - 0.1 * math.log2(640 / 20 / 4)))
    assert estimate(PASSED, answer("   "), "chat").value == 0.0


def test_a_failed_gate_is_no_confidence() -> None:
    sure = estimate((GateVerdict("schema", False, "bad"),), answer(), "extraction")
    assert sure.value == 0.0 and "rejected by schema" in sure.detail
