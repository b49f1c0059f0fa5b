"""Feedback on a logged request: a score (0–1 or thumbs), whether the user had to correct the
answer, and optional text. At most one per request, so nothing is ever counted twice.

    from taskroute.quality.feedback import give_feedback
    give_feedback("taskroute.db", "req-…", thumbs="down", corrected=True, text="wrong total")

The gateway's `POST /v1/taskroute/feedback` takes the same fields as JSON.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskroute.exceptions import DuplicateFeedback, InvalidRequest
from taskroute.exceptions import UnknownRequest as UnknownRequest  # quality_api catches it here

FIELDS = ("request_id", "score", "thumbs", "corrected", "text")
MAX_TEXT = 4000
_THUMBS = {"up": 1.0, "down": 0.0}


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    score: float | None = None      # 0..1; thumbs up is 1, thumbs down 0
    corrected: bool = False
    text: str | None = None


def parse_feedback(body: Any, *, request_id: str | None = None) -> Feedback:
    """Feedback from a JSON body; `request_id` (from the header) when the body has none."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("feedback is a JSON object, e.g. {\"request_id\": \"req-…\", "
                             "\"thumbs\": \"up\"}")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise InvalidRequest(f"unknown feedback field {unknown[0]!r}; "
                             f"expected: {', '.join(FIELDS)}")
    rid = body.get("request_id", request_id)
    if not isinstance(rid, str) or not rid.strip():
        raise InvalidRequest("feedback needs the request id: 'request_id' in the body or the "
                             "X-Taskroute-Request-Id header of the answer")
    return make_feedback(rid.strip(), score=body.get("score"), thumbs=body.get("thumbs"),
                         corrected=body.get("corrected", False), text=body.get("text"))


def make_feedback(
    request_id: str, *, score: Any = None, thumbs: Any = None, corrected: Any = False,
    text: Any = None,
) -> Feedback:
    if score is not None and thumbs is not None:
        raise InvalidRequest("give a 'score' or 'thumbs', not both")
    value: float | None = None
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float) or not (
            math.isfinite(score) and 0 <= score <= 1
        ):
            raise InvalidRequest(f"'score' is a number from 0 to 1, not {score!r}")
        value = float(score)
    elif thumbs is not None:
        key = thumbs.lower() if isinstance(thumbs, str) else thumbs
        if key not in _THUMBS:
            raise InvalidRequest(f"'thumbs' is \"up\" or \"down\", not {thumbs!r}")
        value = _THUMBS[key]
    if not isinstance(corrected, bool):
        raise InvalidRequest(f"'corrected' is true or false, not {corrected!r}")
    if text is not None and not isinstance(text, str):
        raise InvalidRequest("'text' is a string")
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidRequest(f"'text' is at most {MAX_TEXT:,} characters")
    if value is None and not corrected:
        raise InvalidRequest("feedback needs a 'score' (0 to 1), 'thumbs' (up or down) or "
                             "'corrected': true")
    return Feedback(request_id, value, corrected, text or None)


# The request's route and outcome, copied next to its feedback so the stats read one index.
_ROUTE = """
SELECT ts, task, tier, model, policy, COALESCE(variant, ''),
       status = 'ok' AND escalated = 0 AND NOT EXISTS (
           SELECT 1 FROM attempts a WHERE a.request_id = requests.request_id
           AND a.status IN ('rejected', 'error')),
       status = 'ok' AND escalated = 0
FROM requests WHERE request_id = ?
"""


def request_exists(conn: sqlite3.Connection, request_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone()
    return row is not None


def record(conn: sqlite3.Connection, feedback: Feedback, *, key_id: str | None = None) -> None:
    """Store feedback against its request. Raises `UnknownRequest` or `DuplicateFeedback`."""
    route = conn.execute(_ROUTE, (feedback.request_id,)).fetchone()
    if route is None:
        raise UnknownRequest(f"no logged request has the id {feedback.request_id!r}")
    try:
        conn.execute(
            "INSERT INTO feedback (request_id, ts, score, corrected, text, api_key_id, "
            "request_ts, task, tier, model, policy, variant, first_pass, unescalated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (feedback.request_id, time.time(), feedback.score, int(feedback.corrected),
             feedback.text, key_id, *route))
    except sqlite3.IntegrityError:
        raise DuplicateFeedback(
            f"request {feedback.request_id!r} already has feedback; it counts once"
        ) from None


def give_feedback(
    db: str | Path | sqlite3.Connection, request_id: str, *, score: float | None = None,
    thumbs: str | None = None, corrected: bool = False, text: str | None = None,
) -> Feedback:
    """The library's way to give feedback on a request logged to the SQLite log at `db`."""
    from taskroute.store.migrations import migrate
    from taskroute.store.sqlite import connect

    feedback = make_feedback(request_id, score=score, thumbs=thumbs, corrected=corrected,
                             text=text)
    conn = db if isinstance(db, sqlite3.Connection) else connect(db)
    try:
        migrate(conn)
        record(conn, feedback)
    finally:
        if conn is not db:
            conn.close()
    return feedback
