"""Shared reading of JSON Lines files for importers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskroute.exceptions import DataError


def read_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, object) for each non-blank line; DataError on bad JSON."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", file=str(path)) from exc
    with handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=str(path), row=row) from exc
            if not isinstance(obj, dict):
                raise DataError("expected a JSON object", file=str(path), row=row)
            yield row, obj


def number(obj: dict[str, Any], key: str, *, file: Path, row: int,
           required: bool = True) -> float | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"expected a number, got {value!r}", file=str(file), row=row, field=key)
    return float(value)
