from __future__ import annotations

from typing import Any

import pytest

from taskroute.exceptions import InvalidRequest
from taskroute.request import ChatRequest
from taskroute.session import InMemorySessionHistory
from taskroute.signals import (
    code_density,
    complexity,
    count_constraints,
    count_questions,
    estimate_tokens,
    math_density,
    measure,
)


def request(content: str = "hello", **fields: Any) -> ChatRequest:
    return ChatRequest.from_dict({"messages": [{"role": "user", "content": content}], **fields})


def test_input_tokens_grow_with_the_text_and_count_every_message() -> None:
    short = measure(request("a" * 40))
    long = measure(request("a" * 4000))
    assert short.input_tokens == 10
    assert long.input_tokens == 1000
    two = ChatRequest.from_dict({"messages": [
        {"role": "system", "content": "b" * 400}, {"role": "user", "content": "a" * 40},
    ]})
    assert measure(two).input_tokens == 110
    assert estimate_tokens("") == 0


def test_questions_and_constraints_are_counted() -> None:
    assert count_questions("Why? And how? When") == 2
    text = "You must answer in JSON.\n- exactly three items\n- at most 20 words\nDo not explain."
    assert count_constraints(text) >= 4
    assert count_constraints("Tell me a joke") == 0


def test_code_density_tells_code_from_prose() -> None:
    code = "def add(a, b):\n    return a + b\n\nprint(add(1, 2));"
    assert code_density(code) > 0.5
    assert code_density("The weather is nice today.\nLet's go outside.") == 0.0


def test_math_density_tells_math_from_prose() -> None:
    assert math_density("Solve for x: 3x + 5 = 20, then compute 2 * 7") > 0.5
    assert math_density("Write a friendly note to my neighbour") == 0.0


def test_complexity_is_bounded_and_rises_with_the_parts() -> None:
    assert complexity(1, 0, 0, 0.0, 0.0) == 0.0
    assert complexity(100_000, 10, 10, 1.0, 1.0) == 1.0
    assert complexity(2000, 2, 3, 0.0, 0.0) > complexity(20, 0, 0, 0.0, 0.0)


def test_retrieval_score_is_read_from_metadata_and_checked() -> None:
    assert measure(request(metadata={"retrieval_score": "0.3"})).retrieval_score == 0.3
    assert measure(request()).retrieval_score is None
    for bad in ("1.5", "high", "-0.1"):
        with pytest.raises(InvalidRequest, match="retrieval_score"):
            measure(request(metadata={"retrieval_score": bad}))


def test_tools_required_unless_tool_choice_is_none() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    assert measure(request(tools=tools)).tools_required
    assert measure(request(tools=tools)).tools == 1
    assert not measure(request(tools=tools, tool_choice="none")).tools_required
    assert not measure(request()).tools_required


def test_format_strictness_levels() -> None:
    schema = {"name": "s", "schema": {"type": "object"}}
    levels = [
        measure(request()).format_strictness,
        measure(request(response_format={"type": "json_object"})).format_strictness,
        measure(request(response_format={"type": "json_schema", "json_schema": schema}))
        .format_strictness,
        measure(request(response_format={
            "type": "json_schema", "json_schema": {**schema, "strict": True},
        })).format_strictness,
    ]
    assert levels == [0, 1, 2, 3]


def test_user_tier_rank_follows_the_policy_order() -> None:
    tiers = ("free", "pro", "enterprise")
    assert measure(request(metadata={"user_tier": "enterprise"}), user_tiers=tiers) \
        .user_tier_rank == 2
    unknown = measure(request(metadata={"user_tier": "gold"}), user_tiers=tiers)
    assert (unknown.user_tier, unknown.user_tier_rank) == ("gold", -1)


def test_session_history_counts_only_the_window() -> None:
    now = [1000.0]
    history = InMemorySessionHistory(now=lambda: now[0])
    history.record_escalation("s1")
    now[0] += 100
    history.record_escalation("s1")
    history.record_escalation("s2")
    assert history.escalations("s1", window_s=300) == 2
    assert history.escalations("s1", window_s=50) == 1
    assert history.escalations("nobody", window_s=300) == 0


def test_session_history_is_bounded() -> None:
    history = InMemorySessionHistory(max_sessions=2, max_events=3)
    for session in ("a", "b", "c"):
        history.record_escalation(session)
    for _ in range(10):
        history.record_escalation("c")
    assert history.escalations("a", 1e9) == 0  # evicted, oldest first
    assert history.escalations("c", 1e9) == 3


def test_density_work_is_bounded_for_huge_prompts() -> None:
    huge = "word " * 200_000
    signals = measure(request(huge))
    assert signals.input_tokens == 250_000
    assert signals.code_density == 0.0
