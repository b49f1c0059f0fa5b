"""The PostgreSQL log, row by row: feedback, today's spend, the training export, the demo's route
table, stored responses and the breakers' trips (the Postgres twins of `sqlite_rows`), as
coroutines over one asyncpg connection."""

from __future__ import annotations

import time
from collections.abc import Sequence

import asyncpg

from taskroute.exceptions import DuplicateFeedback, UnknownRequest
from taskroute.quality.budgets import Scope, day_start
from taskroute.quality.feedback import Feedback
from taskroute.records import Trip
from taskroute.store.base import RatedAnswer, RequestRoute, StoredResponse
from taskroute.store.trips import TRIP_COLUMNS, trip_from_row

# The request's route and outcome, copied next to its feedback so the stats read one table.
_ROUTE = """
SELECT ts, task, tier, model, policy, COALESCE(variant, ''),
       (status IN ('ok', 'unchecked') AND escalated = 0 AND NOT EXISTS (
           SELECT 1 FROM attempts a WHERE a.request_id = r.request_id
           AND a.status IN ('rejected', 'error')))::int,
       (status IN ('ok', 'unchecked') AND escalated = 0)::int
FROM requests r WHERE request_id = $1
"""
_OWNED = _ROUTE.rstrip() + " AND api_key_id IS NOT DISTINCT FROM $2\n"
_INSERT_FEEDBACK = """
INSERT INTO feedback (request_id, ts, score, corrected, text, api_key_id, request_ts, task, tier,
                      model, policy, variant, first_pass, unescalated, named_task)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
"""
_RATED = """
SELECT r.prompt, r.answered_by, f.score, f.corrected, r.cost_usd, r.latency_s, r.task, r.answer,
       f.text, f.named_task
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.prompt IS NOT NULL AND r.answered_by IS NOT NULL
ORDER BY f.id
"""
_ROUTES = """
SELECT request_id, task, answered_by, escalated, latency_s, first_token_s, cost_usd,
       input_tokens, output_tokens
FROM requests WHERE request_id = ANY($1::text[])
"""
_TRIPS = f"SELECT {', '.join(TRIP_COLUMNS)} FROM breaker_trips ORDER BY opened_at DESC LIMIT $1"
_SPEND = """
SELECT 'user', "user", sum(cost_usd) FROM requests
WHERE "user" IS NOT NULL AND ts >= $1 GROUP BY "user"
UNION ALL
SELECT 'key', api_key_id, sum(cost_usd) FROM requests
WHERE api_key_id IS NOT NULL AND ts >= $1 GROUP BY api_key_id
UNION ALL
SELECT 'day', '', COALESCE(sum(cost_usd), 0) FROM requests WHERE ts >= $1
"""


async def record_feedback(
    conn: asyncpg.Connection, feedback: Feedback, *, key_id: str | None = None,
    owner: str | None = None,
) -> None:
    """Store feedback against its request (one logged with the key `owner`, when given).
    Raises `UnknownRequest` or `DuplicateFeedback`."""
    if owner is None:
        route = await conn.fetchrow(_ROUTE, feedback.request_id)
    else:
        route = await conn.fetchrow(_OWNED, feedback.request_id, owner)
    if route is None:
        whose = " made with this key" if owner is not None else ""
        raise UnknownRequest(f"no logged request{whose} has the id {feedback.request_id!r}")
    try:
        await conn.execute(_INSERT_FEEDBACK, feedback.request_id, time.time(), feedback.score,
                           int(feedback.corrected), feedback.text, key_id, *route,
                           feedback.task)
    except asyncpg.UniqueViolationError:
        raise DuplicateFeedback(
            f"request {feedback.request_id!r} already has feedback; it counts once"
        ) from None


async def spend_since(conn: asyncpg.Connection, now: float | None = None) -> dict[Scope, float]:
    """`LogReader.spend_today`: USD per user, per key and in all since 00:00 UTC."""
    start = day_start(time.time() if now is None else now)
    return {(kind, ident): float(cost) for kind, ident, cost in await conn.fetch(_SPEND, start)}


async def rated_answers(conn: asyncpg.Connection) -> list[RatedAnswer]:
    return [
        RatedAnswer(prompt=prompt, model=model, score=score, corrected=bool(corrected),
                    cost_usd=cost, latency_s=latency, task=task, answer=answer, text=text,
                    named_task=named)
        for prompt, model, score, corrected, cost, latency, task, answer, text, named
        in await conn.fetch(_RATED)
    ]


async def request_routes(conn: asyncpg.Connection,
                         request_ids: Sequence[str]) -> list[RequestRoute]:
    return [
        RequestRoute(request_id=rid, task=task, answered_by=answered_by,
                     escalated=bool(escalated), latency_s=latency, first_token_s=first_token,
                     cost_usd=cost, input_tokens=t_in, output_tokens=t_out)
        for rid, task, answered_by, escalated, latency, first_token, cost, t_in, t_out
        in await conn.fetch(_ROUTES, list(dict.fromkeys(request_ids)))
    ]


async def stored_response(conn: asyncpg.Connection, response_id: str) -> StoredResponse | None:
    row = await conn.fetchrow(
        "SELECT request_id, api_key_id, conversation FROM stored_responses "
        "WHERE response_id = $1", response_id)
    if row is None:
        return None
    return StoredResponse(response_id, row[0], str(row[2]).encode(), row[1])


async def recent_trips(conn: asyncpg.Connection, limit: int) -> list[Trip]:
    return [trip_from_row(tuple(row)) for row in await conn.fetch(_TRIPS, limit)]
