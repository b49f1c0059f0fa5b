"""RouterBench wide CSV: `prompt`, `eval_name`, one score column per model,
`<model>|model_response`, `<model>|total_cost` (USD) and `oracle_model_to_route_to`.

An empty score means the model was not run on that prompt: the outcome is left out. A path
with `*` in its file name reads every file it matches, in name order, as one set
(`routerbench:../shared/data/routerbench-3/*_test.csv`: the three tasks mixed).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from taskroute.evaluate.datasets import Outcome, Record
from taskroute.exceptions import DataError

NON_MODEL = {"prompt", "eval_name", "oracle_model_to_route_to", "sample_id", ""}


def load(path: Path) -> list[Record]:
    if "*" in path.name:
        matches = sorted(path.parent.glob(path.name))
        if not matches:
            raise DataError("no file matches", file=str(path))
        return [rec for match in matches for rec in _load_one(match)]
    return _load_one(path)


def _load_one(path: Path) -> list[Record]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", file=str(path)) from exc
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "prompt" not in header:
            raise DataError("missing column", file=str(path), row=1, field="prompt")
        models = [c for c in header if "|" not in c and c not in NON_MODEL]
        if not models:
            raise DataError("no model score columns", file=str(path), row=1)
        return [_record(values, row, str(path), models)
                for row, values in enumerate(reader, start=2)]


def _float(raw: str | None, *, file: str, row: int, name: str) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"expected a number, got {raw!r}", file=file, row=row,
                        field=name) from None
    if not math.isfinite(value):
        raise DataError(f"expected a finite number, got {raw!r}", file=file, row=row, field=name)
    return value


def _record(values: dict[str, str], row: int, file: str, models: list[str]) -> Record:
    outcomes = {}
    for model in models:
        score = _float(values.get(model), file=file, row=row, name=model)
        if score is None:
            continue
        if not 0.0 <= score <= 1.0:
            raise DataError(f"score {score} outside 0..1", file=file, row=row, field=model)
        cost = _float(values.get(f"{model}|total_cost"), file=file, row=row,
                      name=f"{model}|total_cost")
        response = values.get(f"{model}|model_response") or None
        outcomes[model] = Outcome(score, cost=cost, response=response)
    if not outcomes:
        raise DataError("no model has a score", file=file, row=row)
    meta = {k: values[k] for k in ("eval_name", "oracle_model_to_route_to", "sample_id")
            if values.get(k)}
    task = values.get("eval_name") or None
    return Record(values.get("sample_id") or str(row), values["prompt"], outcomes, task, meta)
