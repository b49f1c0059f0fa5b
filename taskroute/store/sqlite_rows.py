"""The SQLite log, row by row: feedback, today's spend, the training export, the demo's route
table and the breakers' trips. Blocking functions over one connection; `SqliteStore` runs them
on its reader thread, `store.logfile` straight from code with no event loop."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from taskroute.exceptions import DuplicateFeedback, UnknownRequest
from taskroute.quality.budgets import Scope, day_start
from taskroute.quality.feedback import Feedback
from taskroute.records import Trip
from taskroute.store.base import RatedAnswer, RequestRoute, StoredResponse
from taskroute.store.trips import TRIP_COLUMNS, trip_from_row

# The request's route and outcome, copied next to its feedback so the stats read one index.
_ROUTE = """
SELECT ts, task, tier, model, policy, COALESCE(variant, ''),
       status IN ('ok', 'unchecked') AND escalated = 0 AND NOT EXISTS (
           SELECT 1 FROM attempts a WHERE a.request_id = requests.request_id
           AND a.status IN ('rejected', 'error')),
       status IN ('ok', 'unchecked') AND escalated = 0
FROM requests WHERE request_id = ?
"""
_OWNED = _ROUTE.rstrip() + " AND api_key_id IS ?\n"
_INSERT_FEEDBACK = """
INSERT INTO feedback (request_id, ts, score, corrected, text, api_key_id, request_ts, task, tier,
                      model, policy, variant, first_pass, unescalated, named_task)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_RATED = """
SELECT r.prompt, r.answered_by, f.score, f.corrected, r.cost_usd, r.latency_s, r.task, r.answer,
       f.text, {named_task}
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.prompt IS NOT NULL AND r.answered_by IS NOT NULL
ORDER BY f.rowid
"""
_ROUTES = """
SELECT request_id, task, answered_by, escalated, latency_s, first_token_s, cost_usd,
       input_tokens, output_tokens
FROM requests WHERE request_id IN ({marks})
"""
_TRIPS = (f"SELECT {', '.join(TRIP_COLUMNS)} FROM breaker_trips INDEXED BY breaker_trips_opened "
          "ORDER BY opened_at DESC LIMIT ?")
_MAX_VARIABLES = 500  # ids per IN (...): well under SQLite's limit on bound variables


def record_feedback(
    conn: sqlite3.Connection, feedback: Feedback, *, key_id: str | None = None,
    owner: str | None = None,
) -> None:
    """Store feedback against its request (one logged with the key `owner`, when given).
    Raises `UnknownRequest` or `DuplicateFeedback`."""
    if owner is None:
        route = conn.execute(_ROUTE, (feedback.request_id,)).fetchone()
    else:
        route = conn.execute(_OWNED, (feedback.request_id, owner)).fetchone()
    if route is None:
        whose = " made with this key" if owner is not None else ""
        raise UnknownRequest(f"no logged request{whose} has the id {feedback.request_id!r}")
    try:
        conn.execute(_INSERT_FEEDBACK, (
            feedback.request_id, time.time(), feedback.score, int(feedback.corrected),
            feedback.text, key_id, *route, feedback.task))
    except sqlite3.IntegrityError:
        raise DuplicateFeedback(
            f"request {feedback.request_id!r} already has feedback; it counts once"
        ) from None


def spend_since(conn: sqlite3.Connection, now: float | None = None) -> dict[Scope, float]:
    """`LogReader.spend_today`: USD per user, per key and in all since 00:00 UTC."""
    start = day_start(time.time() if now is None else now)
    spent: dict[Scope, float] = {}
    for column, kind in (("user", "user"), ("api_key_id", "key")):
        for ident, cost in conn.execute(
            f"SELECT {column}, SUM(cost_usd) FROM requests "
            f"WHERE {column} IS NOT NULL AND ts >= ? GROUP BY {column}", (start,)
        ):
            spent[(kind, ident)] = float(cost)
    total = conn.execute("SELECT SUM(cost_usd) FROM requests WHERE ts >= ?",
                         (start,)).fetchone()[0]
    spent[("day", "")] = float(total or 0.0)
    return spent


def rated_answers(conn: sqlite3.Connection) -> list[RatedAnswer]:
    """`LogReader.rated_answers`; a log opened read-only from before migration 0013 has no
    `named_task`, and its feedback names a class by its text alone."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(feedback)")}
    rated = _RATED.format(named_task="f.named_task" if "named_task" in columns else "NULL")
    return [
        RatedAnswer(prompt=prompt, model=model, score=score, corrected=bool(corrected),
                    cost_usd=cost, latency_s=latency, task=task, answer=answer, text=text,
                    named_task=named)
        for prompt, model, score, corrected, cost, latency, task, answer, text, named
        in conn.execute(rated)
    ]


def request_routes(conn: sqlite3.Connection, request_ids: Sequence[str]) -> list[RequestRoute]:
    """`LogReader.request_routes`."""
    routes: list[RequestRoute] = []
    ids = list(dict.fromkeys(request_ids))
    for i in range(0, len(ids), _MAX_VARIABLES):
        chunk = ids[i:i + _MAX_VARIABLES]
        for row in conn.execute(_ROUTES.format(marks=", ".join("?" * len(chunk))), chunk):
            rid, task, answered_by, escalated, latency, first_token, cost, t_in, t_out = row
            routes.append(RequestRoute(
                request_id=rid, task=task, answered_by=answered_by, escalated=bool(escalated),
                latency_s=latency, first_token_s=first_token, cost_usd=cost,
                input_tokens=t_in, output_tokens=t_out))
    return routes


def stored_response(response_id: str, conn: sqlite3.Connection) -> StoredResponse | None:
    row = conn.execute(
        "SELECT request_id, api_key_id, conversation FROM stored_responses "
        "WHERE response_id = ?", (response_id,)).fetchone()
    if row is None:
        return None
    return StoredResponse(response_id, row[0], str(row[2]).encode(), row[1])


def recent_trips(conn: sqlite3.Connection, limit: int) -> list[Trip]:
    """`TripLog.recent_trips`."""
    return [trip_from_row(row) for row in conn.execute(_TRIPS, (limit,))]
