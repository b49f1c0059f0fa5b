"""Feedback on a logged request: a score (0–1 or thumbs), whether the user had to correct the
answer, the task class it really was (a misroute), and optional text. At most one per request,
so nothing is ever counted twice.

Feedback is stored through the log's reader, `LogReader.add_feedback` (`taskroute.store`):

    from taskroute.quality.feedback import make_feedback
    await store.add_feedback(make_feedback("req-…", thumbs="down", corrected=True))

    from taskroute.store import give_feedback           # code with no event loop, a SQLite log
    give_feedback("taskroute.db", "req-…", thumbs="down", corrected=True, text="wrong total")

The gateway's `POST /v1/taskroute/feedback` takes the same fields as JSON, and checks a `task`
against the policy's classes (`check_task`).

`task` says the request was of that task class ("this was coding, not chat"). Feedback from
before the field (or from a client that only sends text) says it with a text starting
`task: <class>`. `feedback_task` is the one rule that reads either — the field first, then the
text — for the task classifier's training (`scripts/train_task_classifier.py --corrections
LOG`) and the route stats' misroute counts (`misroutes`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from taskroute.exceptions import InvalidRequest

FIELDS = ("request_id", "score", "thumbs", "corrected", "task", "text")
# ASCII only, so a store's `LIKE '%task%'` finds every text this can match (`misroutes`).
_TASK_NAMED = re.compile(r"\s*task\s*[:=]\s*([a-z][a-z0-9_]*)\b", re.IGNORECASE | re.ASCII)
_TASK_CLASS = re.compile(r"[a-z][a-z0-9_]*")  # as the policy loader demands of its classes
MAX_TEXT = 4000
MAX_TASK = 64
_THUMBS = {"up": 1.0, "down": 0.0}


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    score: float | None = None      # 0..1; thumbs up is 1, thumbs down 0
    corrected: bool = False
    text: str | None = None
    task: str | None = None         # the task class the request really was (a misroute)


def parse_feedback(body: Any, *, request_id: str | None = None) -> Feedback:
    """Feedback from a JSON body; `request_id` (from the header) when the body has none."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("feedback is a JSON object, e.g. {\"request_id\": \"req-…\", "
                             "\"thumbs\": \"up\"}")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise InvalidRequest(f"unknown feedback field {unknown[0]!r}; "
                             f"expected: {', '.join(FIELDS)}")
    rid = body.get("request_id", request_id)
    if not isinstance(rid, str) or not rid.strip():
        raise InvalidRequest("feedback needs the request id: 'request_id' in the body or the "
                             "X-Taskroute-Request-Id header of the answer")
    return make_feedback(rid.strip(), score=body.get("score"), thumbs=body.get("thumbs"),
                         corrected=body.get("corrected", False), text=body.get("text"),
                         task=body.get("task"))


def make_feedback(
    request_id: str, *, score: Any = None, thumbs: Any = None, corrected: Any = False,
    text: Any = None, task: Any = None,
) -> Feedback:
    if score is not None and thumbs is not None:
        raise InvalidRequest("give a 'score' or 'thumbs', not both")
    value: float | None = None
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float) or not (
            math.isfinite(score) and 0 <= score <= 1
        ):
            raise InvalidRequest(f"'score' is a number from 0 to 1, not {score!r}")
        value = float(score)
    elif thumbs is not None:
        key = thumbs.lower() if isinstance(thumbs, str) else thumbs
        if key not in _THUMBS:
            raise InvalidRequest(f"'thumbs' is \"up\" or \"down\", not {thumbs!r}")
        value = _THUMBS[key]
    if not isinstance(corrected, bool):
        raise InvalidRequest(f"'corrected' is true or false, not {corrected!r}")
    if text is not None and not isinstance(text, str):
        raise InvalidRequest("'text' is a string")
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidRequest(f"'text' is at most {MAX_TEXT:,} characters")
    if task is not None and not (
        isinstance(task, str) and len(task) <= MAX_TASK and _TASK_CLASS.fullmatch(task)
    ):
        raise InvalidRequest(f"'task' is a task class name (lower_snake_case, e.g. \"coding\"), "
                             f"not {_shown(task)}", param="task")
    if value is None and not corrected:
        raise InvalidRequest("feedback needs a 'score' (0 to 1), 'thumbs' (up or down) or "
                             "'corrected': true")
    return Feedback(request_id, value, corrected, text or None, task)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def check_task(feedback: Feedback, known: Iterable[str]) -> None:
    """Refuse feedback whose `task` is none of the `known` classes (the served policy's)."""
    classes = sorted(set(known))
    if feedback.task is not None and feedback.task not in classes:
        raise InvalidRequest(f"'task' {feedback.task!r} is not a task class of the policy; "
                             f"known: {', '.join(classes)}", param="task")


def task_named(text: str | None) -> str | None:
    """The task class a feedback text names (`task: coding`, any case, at its start), or
    None when it names none."""
    found = _TASK_NAMED.match(text or "")
    return found.group(1).lower() if found else None


def feedback_task(task: str | None, text: str | None) -> str | None:
    """The task class a feedback names: its `task` field, else a text `task: <class>` (feedback
    from before the field), else None. The one rule every reader of the log uses."""
    return task or task_named(text)


def misroutes(rows: Iterable[tuple[str, str | None, str | None, int]]) -> dict[str, Any]:
    """The route stats' misroute counts from feedback rows (served task, the `task` field, the
    text, how many): how many named a class, how many a class other than the one served, and
    those per (served → named) pair, most first."""
    named = 0
    pairs: dict[tuple[str, str], int] = {}
    for served, task, text, n in rows:
        really = feedback_task(task, text)
        if really is None:
            continue
        named += n
        if really != served:
            pairs[(served, really)] = pairs.get((served, really), 0) + n
    ordered = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    return {"named": named, "misrouted": sum(pairs.values()),
            "pairs": [{"served": s, "named": t, "requests": n} for (s, t), n in ordered]}
