"""The request log's feedback as outcome rows, for `taskroute data import store LOG.db`: each
request that has feedback and whose prompt was logged (the policy's `log content: true`)
becomes one row in the store importer's shape — prompt, the model that answered, a score,
cost, latency, task and the answer. A correction scores 0 whatever score came with it (the
user had to fix the answer); thumbs are 1 or 0."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SQL = """
SELECT r.prompt, r.answered_by, f.score, f.corrected, r.cost_usd, r.latency_s, r.task, r.answer
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.prompt IS NOT NULL AND r.answered_by IS NOT NULL
ORDER BY f.rowid
"""
_MAGIC = b"SQLite format 3\x00"


def is_log(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def outcome_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, object) pairs, as the JSONL reader yields them."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for n, (prompt, model, score, corrected, cost, latency, task, answer) in enumerate(
            conn.execute(_SQL), start=1
        ):
            yield n, {
                "prompt": prompt, "model": model,
                "score": 0.0 if corrected else score, "cost": cost, "latency": latency,
                "task": task, "response": answer,
            }
    finally:
        conn.close()
