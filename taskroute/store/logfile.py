"""A SQLite log file from code with no event loop: a script giving feedback, the training-data
importer reading one. Blocking, one connection each, closed before returning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from taskroute.quality.feedback import Feedback, make_feedback
from taskroute.store.base import RatedAnswer
from taskroute.store.migrations import migrate
from taskroute.store.sqlite import connect
from taskroute.store.sqlite_rows import rated_answers, record_feedback

_MAGIC = b"SQLite format 3\x00"


def is_log(path: Path) -> bool:
    """Whether `path` is a SQLite file (rather than, say, the log exported as JSON Lines)."""
    try:
        with path.open("rb") as file:
            return file.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def give_feedback(
    db: str | Path, request_id: str, *, score: float | None = None, thumbs: str | None = None,
    corrected: bool = False, text: str | None = None,
) -> Feedback:
    """The library's way to give feedback on a request in the SQLite log at `db` (async code
    with a store at hand awaits `store.add_feedback(make_feedback(...))` instead). Raises
    `UnknownRequest`, `DuplicateFeedback` or `InvalidRequest`."""
    feedback = make_feedback(request_id, score=score, thumbs=thumbs, corrected=corrected,
                             text=text)
    conn = connect(db)
    try:
        migrate(conn)
        record_feedback(conn, feedback)
    finally:
        conn.close()
    return feedback


def read_rated_answers(path: Path) -> list[RatedAnswer]:
    """`LogReader.rated_answers` of the log at `path`, opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return rated_answers(conn)
    finally:
        conn.close()
