"""Recorded outcomes: several models' results on the same prompts, in one internal format.

One JSONL line per prompt::

    {"id": "mmlu/anatomy/3", "text": "...", "task": "qa", "meta": {"subject": "anatomy"},
     "outcomes": {"gpt-4": {"score": 1.0, "cost": 0.0021, "latency": 1.4, "response": "..."},
                  "mixtral": {"score": 0.0}}}

`score` (0–1) is required for every outcome; `cost` (USD), `latency` (seconds) and `response`
are optional. The flat layout reads as-is with DuckDB (`read_json_auto`) or pandas
(`read_json(lines=True)`). Writing goes to a temporary file renamed into place, so a failed
import never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from taskroute.exceptions import DataError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's recorded result on one prompt."""

    score: float
    cost: float | None = None
    latency: float | None = None
    response: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score}
        for key in ("cost", "latency", "response"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Record:
    """One prompt and every model's outcome on it."""

    id: str
    text: str
    outcomes: Mapping[str, Outcome]
    task: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.task is not None:
            out["task"] = self.task
        if self.meta:
            out["meta"] = dict(self.meta)
        out["outcomes"] = {m: o.to_json() for m, o in self.outcomes.items()}
        return out


@dataclass(frozen=True)
class Dataset:
    """An ordered collection of records with the models they cover, as arrays for replay."""

    records: tuple[Record, ...]
    models: tuple[str, ...]
    source: str = "<memory>"

    @classmethod
    def from_records(cls, records: Iterable[Record], source: str = "<memory>") -> Dataset:
        recs = tuple(records)
        models = sorted({model for rec in recs for model in rec.outcomes})
        return cls(recs, tuple(models), source)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]

    def scores(self) -> FloatArray:
        """(n_prompts, n_models) scores; NaN where a model has no outcome."""
        return self._matrix("score")

    def costs(self) -> FloatArray:
        """(n_prompts, n_models) costs in USD; NaN where unknown."""
        return self._matrix("cost")

    def has_costs(self) -> bool:
        return bool(np.isfinite(self.costs()).any())

    def _matrix(self, attr: str) -> FloatArray:
        out = np.full((len(self.records), len(self.models)), np.nan)
        col = {m: j for j, m in enumerate(self.models)}
        for i, rec in enumerate(self.records):
            for model, outcome in rec.outcomes.items():
                value = getattr(outcome, attr)
                if value is not None:
                    out[i, col[model]] = value
        return out

    def subset(self, indices: Sequence[int] | npt.NDArray[np.int64]) -> Dataset:
        return Dataset(tuple(self.records[int(i)] for i in indices), self.models, self.source)

    def complete(self) -> Dataset:
        """Only the prompts that have a score for every model (replay needs a full matrix)."""
        keep = [r for r in self.records if all(m in r.outcomes for m in self.models)]
        return Dataset(tuple(keep), self.models, self.source)


def _number(value: Any, *, file: str, row: int, name: str, required: bool) -> float | None:
    if value is None:
        if required:
            raise DataError("missing value", file=file, row=row, field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"expected a number, got {value!r}", file=file, row=row, field=name)
    return float(value)


def record_from_json(obj: Any, *, file: str, row: int) -> Record:
    """Parse one JSONL object, raising DataError that names the row and the field."""
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object", file=file, row=row)
    text = obj.get("text")
    if not isinstance(text, str):
        raise DataError("expected a string", file=file, row=row, field="text")
    outcomes_raw = obj.get("outcomes")
    if not isinstance(outcomes_raw, dict) or not outcomes_raw:
        raise DataError("expected a non-empty object", file=file, row=row, field="outcomes")
    outcomes: dict[str, Outcome] = {}
    for model, raw in outcomes_raw.items():
        where = f"outcomes.{model}"
        if not isinstance(raw, dict):
            raise DataError("expected an object", file=file, row=row, field=where)
        score = _number(raw.get("score"), file=file, row=row, name=f"{where}.score", required=True)
        assert score is not None
        if not 0.0 <= score <= 1.0:
            raise DataError(f"score {score} outside 0..1", file=file, row=row,
                            field=f"{where}.score")
        response = raw.get("response")
        if response is not None and not isinstance(response, str):
            raise DataError("expected a string", file=file, row=row, field=f"{where}.response")
        outcomes[str(model)] = Outcome(
            score=score,
            cost=_number(raw.get("cost"), file=file, row=row, name=f"{where}.cost",
                         required=False),
            latency=_number(raw.get("latency"), file=file, row=row, name=f"{where}.latency",
                            required=False),
            response=response,
        )
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise DataError("expected an object", file=file, row=row, field="meta")
    task = obj.get("task")
    if task is not None and not isinstance(task, str):
        raise DataError("expected a string", file=file, row=row, field="task")
    return Record(str(obj.get("id", row)), text, outcomes, task, meta)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Record]:
    file = str(path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", file=file) from exc
    with handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=file, row=row) from exc
            yield record_from_json(obj, file=file, row=row)


def load_jsonl(path: str | os.PathLike[str]) -> Dataset:
    """Read an outcomes JSONL file (see the module docstring for the format)."""
    dataset = Dataset.from_records(iter_jsonl(path), source=str(path))
    if not dataset.records:
        raise DataError("no records", file=str(path))
    return dataset


def write_jsonl(records: Iterable[Record], path: str | os.PathLike[str]) -> int:
    """Write records atomically (temporary file, then rename). Returns the number written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for rec in records:
                out.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
                count += 1
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
