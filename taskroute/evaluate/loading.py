"""Open a dataset named on the command line: an outcomes JSONL, or `FORMAT:PATH` to import."""

from __future__ import annotations

from pathlib import Path

from taskroute.evaluate.datasets import Dataset, load_jsonl
from taskroute.evaluate.importers import FORMATS
from taskroute.evaluate.importers import load as import_records
from taskroute.exceptions import DataError


def open_dataset(spec: str) -> Dataset:
    """`data.jsonl`, or e.g. `routellm:../shared/data/routellm-mmlu` for a foreign format."""
    fmt, sep, rest = spec.partition(":")
    if sep and fmt in FORMATS:
        dataset = Dataset.from_records(import_records(fmt, Path(rest)), source=rest)
        if not dataset.records:
            raise DataError("no records", file=rest)
        return dataset
    return load_jsonl(spec)
