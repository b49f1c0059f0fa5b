"""Feedback's fields, and the one rule that reads the task class a feedback names: its `task`
field first, then a text `task: <class>` (feedback from before the field)."""

from __future__ import annotations

import pytest

from taskroute.exceptions import InvalidRequest
from taskroute.quality.feedback import (
    check_task,
    feedback_task,
    make_feedback,
    misroutes,
    parse_feedback,
    task_named,
)


def test_the_task_field_is_parsed_checked_for_form_and_kept_apart_from_the_text() -> None:
    given = parse_feedback({"request_id": "r1", "corrected": True, "task": "coding",
                            "text": "task: qa"})
    assert (given.task, given.text) == ("coding", "task: qa")
    assert parse_feedback({"request_id": "r1", "thumbs": "up"}).task is None
    for bad in ("Coding", " coding", "coding!", "9lives", "", "x" * 65, 7, ["coding"], True):
        with pytest.raises(InvalidRequest, match="task class name") as caught:
            make_feedback("r1", corrected=True, task=bad)
        assert caught.value.param == "task"
    assert make_feedback("r1", corrected=True, task="x" * 64).task == "x" * 64


def test_a_task_alone_is_no_rating() -> None:
    with pytest.raises(InvalidRequest, match="needs a 'score'"):
        make_feedback("r1", task="coding")


def test_the_field_comes_first_then_the_text() -> None:
    assert feedback_task("coding", "task: qa") == "coding"
    assert feedback_task(None, "  TASK = qa, not chat") == "qa"
    assert feedback_task(None, "the task list was wrong") is None
    assert feedback_task(None, None) is None
    # ASCII only: the stores' LIKE '%task%' finds every text it reads a class from
    assert task_named("ta\u017fk: coding") is None           # a long s
    assert task_named("task: \u212aoding") is None           # a Kelvin sign


def test_check_task_names_the_known_classes() -> None:
    check_task(make_feedback("r1", thumbs="up"), ["chat"])            # no task: nothing to check
    check_task(make_feedback("r1", thumbs="up", task="chat"), ["chat"])
    with pytest.raises(InvalidRequest, match=r"known: chat, coding$") as caught:
        check_task(make_feedback("r1", thumbs="up", task="poetry"), ["coding", "chat", "chat"])
    assert caught.value.param == "task"


def test_misroutes_count_the_named_classes_per_served_one_most_first() -> None:
    rows = [("chat", "coding", None, 2), ("chat", None, "task: coding", 1),
            ("qa", None, "task: reasoning", 1), ("chat", "chat", None, 4),
            ("chat", None, "no class here", 9), ("qa", "coding", "task: qa", 3)]
    assert misroutes(rows) == {"named": 11, "misrouted": 7, "pairs": [
        {"served": "chat", "named": "coding", "requests": 3},
        {"served": "qa", "named": "coding", "requests": 3},
        {"served": "qa", "named": "reasoning", "requests": 1}]}
    assert misroutes([]) == {"named": 0, "misrouted": 0, "pairs": []}
