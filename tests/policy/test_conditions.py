from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from taskroute.exceptions import ConditionError
from taskroute.policy.conditions import compile_condition

TASKS = ("chat", "reasoning", "coding")
TIERS = ("free", "pro", "enterprise")


def check(text: str, **facts: Any) -> bool:
    base: dict[str, Any] = {
        "task": "chat", "input_tokens": 100, "format": "text", "user_tier_rank": -1,
        "tools_required": False, "retrieval_score": None, "complexity": 0.2,
    }
    base.update(facts)
    return compile_condition(text, tasks=TASKS, user_tiers=TIERS)(SimpleNamespace(**base))


def test_comparisons_and_boolean_logic() -> None:
    assert check("input_tokens > 50 and task is chat")
    assert not check("input_tokens > 500 and task is chat")
    assert check("input_tokens > 500 or task is chat")
    assert check("not task is coding")
    assert check("task is not coding")
    assert check("(task is coding or task is chat) and complexity <= 0.2")
    assert check("task in [chat, coding]")
    assert check("task not in [reasoning]")
    assert check("tools_required", tools_required=True)
    assert not check("tools_required")
    assert check("format is strict_schema", format="strict_schema")


def test_user_tier_compares_by_rank() -> None:
    assert check("user_tier >= pro", user_tier_rank=2)
    assert not check("user_tier >= pro", user_tier_rank=0)
    assert check("user_tier is enterprise", user_tier_rank=2)


def test_absent_signal_matches_no_comparison() -> None:
    assert not check("retrieval_score < 0.5")
    assert check("retrieval_score < 0.5", retrieval_score=0.2)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("task is poetry", "unknown task class 'poetry'"),
        ("format is yaml", "format is one of"),
        ("user_tier is gold", "unknown user tier"),
        ("task > chat", "is not a number"),
        ("input_tokens > ", "ends too early"),
        ("input_tokens > 5 5", "unexpected"),
        ("", "empty condition"),
        ("tools_required is maybe", "true or false"),
    ],
)
def test_bad_conditions_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ConditionError, match=fragment):
        compile_condition(text, tasks=TASKS, user_tiers=TIERS)
