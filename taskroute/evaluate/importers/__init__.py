"""Importers: one module per foreign format, each turning files into outcome `Record`s.

Each module defines `load(path, **options) -> list[Record]` and raises `DataError` naming the
file, row and field of the first bad value; nothing is written until every row has parsed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from taskroute.evaluate.datasets import Record
from taskroute.exceptions import CallerError

FORMATS: tuple[str, ...] = ("llmrouter", "mtbench", "routellm", "routerbench", "store")


def load(fmt: str, path: str | Path, **options: Any) -> list[Record]:
    """Read `path` in the named format (for `store`, also a store URL: `postgresql://…`)."""
    if fmt not in FORMATS:
        raise CallerError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    module = importlib.import_module(f"taskroute.evaluate.importers.{fmt}")
    source = path if isinstance(path, str) and "://" in path else Path(path)  # Path folds "//"
    records: list[Record] = module.load(source, **options)
    return records
