"""Each built-in gate, on answers built by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from taskroute.gates.base import GateEnv
from taskroute.gates.json_valid import build as valid_json
from taskroute.gates.json_valid import build_if_asked as valid_json_if_asked
from taskroute.gates.length import build as length
from taskroute.gates.logprob import answer_confidence
from taskroute.gates.logprob import build as logprob
from taskroute.gates.non_empty import build as non_empty
from taskroute.gates.refusal import build as refusal
from taskroute.gates.regex import build as regex
from taskroute.gates.schema import build as schema
from taskroute.gates.truncation import build as not_truncated
from taskroute.policy.loader import load_default_policy
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, Choice, ResponseMessage, Usage

ENV = GateEnv(load_default_policy())
PLAIN = ChatRequest.from_prompt("hello")
JSON_ASKED = ChatRequest.from_prompt("give json", response_format={"type": "json_object"})
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
SCHEMA_ASKED = ChatRequest.from_prompt(
    "give json", response_format={"type": "json_schema",
                                  "json_schema": {"name": "x", "schema": SCHEMA}},
)


def answer(text: str | None = "ok", *, finish: str = "stop", tool_calls: Any = None,
           logprobs: Any = None, refusal_text: str | None = None,
           output_tokens: int | None = None) -> ChatResponse:
    message = ResponseMessage(content=text, tool_calls=tool_calls, refusal=refusal_text)
    usage = None if output_tokens is None else Usage(
        prompt_tokens=3, completion_tokens=output_tokens, total_tokens=3 + output_tokens)
    return ChatResponse(model="m", choices=[Choice(message=message, finish_reason=finish,
                                                   logprobs=logprobs)], usage=usage)


def test_non_empty_rejects_blank_text_but_accepts_a_tool_call() -> None:
    gate = non_empty({}, ENV)
    assert not gate.check(answer("  \n"), PLAIN).passed
    assert gate.check(answer("x"), PLAIN).passed
    assert gate.check(answer(None, tool_calls=[{"id": "1"}]), PLAIN).passed


def test_length_bounds_in_characters_and_words() -> None:
    gate = length({"min": 3, "max": 5}, ENV)
    assert not gate.check(answer("ab"), PLAIN).passed
    assert gate.check(answer("abcd"), PLAIN).passed
    verdict = gate.check(answer("abcdef"), PLAIN)
    assert not verdict.passed and "more than 5" in verdict.reason
    words = length({"max": 2, "unit": "words"}, ENV)
    assert not words.check(answer("one two three"), PLAIN).passed


@pytest.mark.parametrize("params", [{}, {"min": 5, "max": 2}, {"min": "x"}, {"mn": 1}])
def test_length_rejects_bad_settings(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="length gate"):
        length(params, ENV)


def test_valid_json_rejects_prose_and_says_where() -> None:
    verdict = valid_json({}, ENV).check(answer('{"a": 1'), PLAIN)
    assert not verdict.passed and "not valid JSON" in verdict.reason
    assert valid_json({}, ENV).check(answer('{"a": 1}'), PLAIN).passed


def test_valid_json_if_asked_only_judges_json_requests() -> None:
    gate = valid_json_if_asked({}, ENV)
    assert gate.check(answer("plain prose"), PLAIN).passed
    assert not gate.check(answer("plain prose"), JSON_ASKED).passed
    assert gate.check(answer('{"answer": 1}'), JSON_ASKED).passed


def test_schema_gate_checks_only_when_a_schema_was_asked() -> None:
    gate = schema({}, ENV)
    assert gate.check(answer("not json at all"), PLAIN).passed
    assert gate.check(answer('{"n": 3}'), SCHEMA_ASKED).passed
    wrong = gate.check(answer('{"n": "three"}'), SCHEMA_ASKED)
    assert not wrong.passed and "at n" in wrong.reason
    missing = gate.check(answer("{}"), SCHEMA_ASKED)
    assert not missing.passed and "'n' is a required property" in missing.reason
    assert not gate.check(answer("{oops"), SCHEMA_ASKED).passed


def test_schema_gate_does_not_block_on_a_broken_schema() -> None:
    broken = ChatRequest.from_prompt("x", response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}})
    verdict = schema({}, ENV).check(answer("{}"), broken)
    assert verdict.passed and "not valid" in verdict.reason


@pytest.mark.parametrize("text", [
    "I can't help with that.",
    "I'm sorry, but I cannot assist with this request.",
    "I am unable to provide that information.",
    "As an AI language model, I do not have opinions.",
    "I\u2019m not sure about this, but it might be 42.",
    "I don't know.",
])
def test_refusal_gate_catches_refusals_and_hedges(text: str) -> None:
    assert not refusal({}, ENV).check(answer(text), PLAIN).passed


def test_refusal_gate_passes_real_answers_and_late_quotes() -> None:
    gate = refusal({}, ENV)
    assert gate.check(answer("Paris is the capital of France."), PLAIN).passed
    long = "Here is the summary you asked for. " * 20 + "He said: I can't help with that."
    assert gate.check(answer(long), PLAIN).passed
    assert not gate.check(answer("", refusal_text="policy"), PLAIN).passed


def test_refusal_gate_can_accept_hedges_and_add_patterns() -> None:
    lenient = refusal({"hedging": False, "patterns": ["^nope"]}, ENV)
    assert lenient.check(answer("I'm not sure, but probably 4."), PLAIN).passed
    assert not lenient.check(answer("Nope."), PLAIN).passed


def test_not_truncated_rejects_finish_reason_length() -> None:
    gate = not_truncated({}, ENV)
    assert not gate.check(answer("half an answ", finish="length"), PLAIN).passed
    assert gate.check(answer("done"), PLAIN).passed


def test_not_truncated_accepts_an_answer_cut_at_the_callers_own_max_tokens() -> None:
    gate = not_truncated({}, ENV)
    short = ChatRequest.from_prompt("Tell me a long story", max_tokens=1)
    cut = gate.check(answer("Once", finish="length"), short)
    assert cut.passed and "max_tokens (1)" in cut.reason
    at_limit = ChatRequest.from_prompt("Tell me a long story", max_tokens=50)
    assert gate.check(answer("Once upon", finish="length", output_tokens=50), at_limit).passed
    assert gate.check(answer("Once upon", finish="length", output_tokens=46), at_limit).passed


def test_not_truncated_rejects_a_cut_well_below_the_callers_max_tokens() -> None:
    """The usage says the model wrote 10 of the 50 tokens allowed: the upstream cut it, not
    the caller's limit."""
    gate = not_truncated({}, ENV)
    roomy = ChatRequest.from_prompt("Tell me a long story", max_tokens=50)
    cut = gate.check(answer("Once upon", finish="length", output_tokens=10), roomy)
    assert not cut.passed and "10 tokens, below the caller's max_tokens (50)" in cut.reason


def test_regex_gate_uses_the_pattern_on_the_trimmed_answer() -> None:
    gate = regex({"value": "^[A-D]$"}, ENV)
    assert gate.check(answer(" B\n"), PLAIN).passed
    assert not gate.check(answer("The answer is B"), PLAIN).passed
    with pytest.raises(ValueError, match="not valid"):
        regex({"value": "("}, ENV)


def logprobs_of(*probabilities: float) -> dict[str, Any]:
    return {"content": [{"token": "t", "logprob": math.log(p)} for p in probabilities]}


def test_logprob_confidence_is_the_geometric_mean_probability() -> None:
    confidence = answer_confidence(answer(logprobs=logprobs_of(0.9, 0.4)))
    assert confidence == pytest.approx(math.sqrt(0.9 * 0.4))


def test_logprob_gate_rejects_low_confidence_and_passes_without_logprobs() -> None:
    gate = logprob({"min_confidence": 0.8}, ENV)
    low = gate.check(answer(logprobs=logprobs_of(0.5, 0.5)), PLAIN)
    assert not low.passed and low.confidence == pytest.approx(0.5)
    assert gate.check(answer(logprobs=logprobs_of(0.95)), PLAIN).passed
    absent = gate.check(answer(), PLAIN)
    assert absent.passed and "no logprobs" in absent.reason and absent.confidence is None


@pytest.mark.parametrize("build", [non_empty, valid_json, schema, not_truncated])
def test_settingless_gates_reject_settings(build: Any) -> None:
    with pytest.raises(ValueError, match="takes no settings"):
        build({"oops": 1}, ENV)
