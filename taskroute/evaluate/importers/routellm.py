"""RouteLLM benchmark CSVs: `prompt`, one True/False column per model, optional `<model>_response`.

`path` is one CSV or a folder of them (one per subject: the file name, less a prefix shared by
all files such as `mmlu_`, becomes `meta.subject`). A `contaminated_prompts.jsonl` beside the
files (or given explicitly) lists prompts to exclude, matched exactly on `eval_prompt`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from taskroute.evaluate.datasets import Outcome, Record
from taskroute.exceptions import DataError

_TRUTH = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
CONTAMINATED = "contaminated_prompts.jsonl"


def load(path: Path, contaminated: Path | None = None) -> list[Record]:
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DataError("no .csv files in folder", file=str(path))
    elif path.is_file():
        files = [path]
    else:
        raise DataError("no such file or folder", file=str(path))
    folder = path if path.is_dir() else path.parent
    if contaminated is None and (folder / CONTAMINATED).is_file():
        contaminated = folder / CONTAMINATED
    excluded = read_contaminated(contaminated) if contaminated else set()
    prefix = _shared_prefix([f.stem for f in files]) if len(files) > 1 else ""
    records: list[Record] = []
    for file in files:
        subject = file.stem[len(prefix):] if len(files) > 1 else None
        records.extend(_read_csv(file, subject, excluded))
    return records


def read_contaminated(path: Path) -> set[str]:
    out: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=str(path), row=row) from exc
            prompt = obj.get("eval_prompt") if isinstance(obj, dict) else None
            if not isinstance(prompt, str):
                raise DataError("expected a string", file=str(path), row=row,
                                field="eval_prompt")
            out.add(prompt)
    return out


def _shared_prefix(stems: list[str]) -> str:
    common = os.path.commonprefix(stems)  # noqa: RUF071 - a string prefix is wanted
    cut = common.rfind("_")
    return common[: cut + 1] if cut >= 0 else ""


def _read_csv(file: Path, subject: str | None, excluded: set[str]) -> list[Record]:
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "prompt" not in header:
            raise DataError("missing column", file=str(file), row=1, field="prompt")
        models = [c for c in header if c != "prompt" and not c.endswith("_response")]
        if not models:
            raise DataError("no model columns", file=str(file), row=1)
        records = []
        for row, values in enumerate(reader, start=2):
            prompt = values["prompt"]
            if prompt in excluded:
                continue
            outcomes = {}
            for model in models:
                raw = (values.get(model) or "").strip().lower()
                if raw not in _TRUTH:
                    raise DataError(f"expected True or False, got {values.get(model)!r}",
                                    file=str(file), row=row, field=model)
                outcomes[model] = Outcome(_TRUTH[raw], response=values.get(f"{model}_response"))
            meta = {"subject": subject} if subject else {}
            records.append(Record(f"{file.stem}/{row}", prompt, outcomes, None, meta))
    return records
