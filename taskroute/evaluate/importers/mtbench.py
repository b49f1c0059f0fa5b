"""FastChat llm_judge single-answer judgements (MT-Bench style).

`path` is a judgement JSONL (`question_id`, `model`, `score` 1–10, `turn`), or a folder holding
`question.jsonl` and one or more `*judgment*.jsonl` files. Questions come from `question.jsonl`
(`question_id`, `category`, `turns`). One record per (question, turn): its text is that turn's
prompt, quality = score / 10 (averaged when judged more than once), the category becomes the
task. A score of -1 marks a failed judgement and is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskroute.evaluate.datasets import Outcome, Record
from taskroute.evaluate.importers._jsonl import number, read_objects
from taskroute.exceptions import DataError


def load(path: Path, questions: Path | None = None) -> list[Record]:
    if path.is_dir():
        judgements = sorted(p for p in path.glob("*.jsonl") if "judg" in p.name)
        questions = questions or path / "question.jsonl"
    else:
        judgements = [path]
        questions = questions or path.parent / "question.jsonl"
    if not judgements:
        raise DataError("no judgement .jsonl files", file=str(path))
    texts = _questions(questions)
    sums: dict[tuple[Any, int], dict[str, list[float]]] = {}
    for file in judgements:
        for row, obj in read_objects(file):
            qid, model = obj.get("question_id"), obj.get("model")
            if qid not in texts:
                raise DataError(f"unknown question {qid!r}", file=str(file), row=row,
                                field="question_id")
            if not isinstance(model, str):
                raise DataError("expected a string", file=str(file), row=row, field="model")
            score = number(obj, "score", file=file, row=row)
            turn = int(number(obj, "turn", file=file, row=row, required=False) or 1)
            if score == -1:
                continue
            assert score is not None
            if not 0 <= score <= 10:
                raise DataError(f"score {score} outside 1..10", file=str(file), row=row,
                                field="score")
            if not 1 <= turn <= len(texts[qid][1]):
                raise DataError(f"no turn {turn}", file=str(file), row=row, field="turn")
            sums.setdefault((qid, turn), {}).setdefault(model, []).append(score / 10)
    records = []
    for (qid, turn), by_model in sums.items():
        category, turns = texts[qid]
        outcomes = {m: Outcome(sum(v) / len(v)) for m, v in by_model.items()}
        records.append(Record(f"{qid}/{turn}", turns[turn - 1], outcomes, category,
                              {"question_id": qid, "turn": turn}))
    return records


def _questions(path: Path) -> dict[Any, tuple[str | None, list[str]]]:
    out: dict[Any, tuple[str | None, list[str]]] = {}
    for row, obj in read_objects(path):
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise DataError("expected a list of strings", file=str(path), row=row, field="turns")
        category = obj.get("category")
        out[obj.get("question_id")] = (category if isinstance(category, str) else None, turns)
    return out
