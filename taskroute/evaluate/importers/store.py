"""The gateway's own log (its SQLite file, a store URL such as `postgresql://…`, or the log
exported as JSON Lines): real traffic becomes training data.

Each line is one routed call with feedback: `prompt` (or `text`), `model`, and a quality as
`score` (0–1) or `feedback` (`"up"`/`"down"`, `true`/`false`); optional `cost`, `latency`,
`response`, `task`. Calls without feedback are skipped. Calls on the same prompt text (and task)
are grouped into one record; repeated calls of one model on it are averaged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskroute.evaluate.datasets import Outcome, Record
from taskroute.evaluate.importers._jsonl import number, read_objects
from taskroute.exceptions import DataError

_FEEDBACK = {"up": 1.0, "down": 0.0, True: 1.0, False: 0.0, "good": 1.0, "bad": 0.0}


def load(path: Path | str) -> list[Record]:
    """`path`: a file (the SQLite log or its JSONL export), or a store URL (a string)."""
    groups: dict[tuple[str, str | None], dict[str, list[dict[str, Any]]]] = {}
    from taskroute.store.logfile import is_log, is_url  # the log itself, or its export

    logged = is_url(path) or is_log(Path(path))
    file = Path(path)  # named in error messages
    for row, obj in _logged(path) if logged else read_objects(file):
        text = obj.get("prompt", obj.get("text"))
        if not isinstance(text, str):
            raise DataError("expected a string", file=str(path), row=row, field="prompt")
        model = obj.get("model")
        if not isinstance(model, str) or not model:
            raise DataError("expected a model name", file=str(path), row=row, field="model")
        score = _quality(obj, file, row)
        if score is None:
            continue
        task = obj.get("task") if isinstance(obj.get("task"), str) else None
        call = {"score": score,
                "cost": number(obj, "cost", file=file, row=row, required=False),
                "latency": number(obj, "latency", file=file, row=row, required=False),
                "response": obj.get("response") if isinstance(obj.get("response"), str)
                else None}
        groups.setdefault((text, task), {}).setdefault(model, []).append(call)
    records = []
    for n, ((text, task), by_model) in enumerate(groups.items(), start=1):
        outcomes = {m: _merge(calls) for m, calls in by_model.items()}
        records.append(Record(f"store/{n}", text, outcomes, task, {}))
    return records


def _logged(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The log's rated answers as (row number, object) pairs, as the JSONL reader yields them.
    A correction scores 0 whatever score came with it: the user had to fix the answer. The
    task is the one the feedback names where it names one (a misroute), else the served one."""
    from taskroute.store.logfile import read_rated_answers

    for n, a in enumerate(read_rated_answers(path), start=1):
        yield n, {"prompt": a.prompt, "model": a.model,
                  "score": 0.0 if a.corrected else a.score, "cost": a.cost_usd,
                  "latency": a.latency_s, "task": a.feedback_task or a.task,
                  "response": a.answer}


def _quality(obj: dict[str, Any], path: Path, row: int) -> float | None:
    if obj.get("score") is not None:
        score = number(obj, "score", file=path, row=row)
        assert score is not None
        if not 0 <= score <= 1:
            raise DataError(f"score {score} outside 0..1", file=str(path), row=row,
                            field="score")
        return score
    feedback = obj.get("feedback")
    if feedback is None:
        return None
    key = feedback.lower() if isinstance(feedback, str) else feedback
    if key not in _FEEDBACK:
        raise DataError(f"unknown feedback {feedback!r}", file=str(path), row=row,
                        field="feedback")
    return _FEEDBACK[key]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _merge(calls: list[dict[str, Any]]) -> Outcome:
    score = _mean([c["score"] for c in calls])
    assert score is not None
    return Outcome(score, cost=_mean([c["cost"] for c in calls]),
                   latency=_mean([c["latency"] for c in calls]), response=calls[-1]["response"])
