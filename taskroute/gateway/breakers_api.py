"""`GET /v1/taskroute/breakers`: each deployment's circuit breaker and the recent trips.

Every deployment the running policy names is listed (closed until a call says otherwise), with
its state as the routers serving now see it — a variant's or the shadow's router has breakers
of its own, and the worst state wins — and, with shared state, how long another replica's word
keeps it shut. The trips are the process's `TripHistory`, newest first, other replicas' marked
`"by": "replica"`; with a log that keeps them (`persisted`), the history is read back from it
when the gateway starts, so it holds the trips from before a restart, and a replica started
later has the others'.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from taskroute.calling.breaker import BreakerState
from taskroute.experiment import Serving
from taskroute.gateway.context import GATEWAY
from taskroute.gateway.observed import routers_of, worst_breaker_states

log = logging.getLogger("taskroute.gateway")
TRIPS_SHOWN = 50


def install(app: web.Application) -> None:
    app.router.add_get("/v1/taskroute/breakers", get_breakers)
    app.on_startup.append(_load_trips)


async def _load_trips(app: web.Application) -> None:
    """The trip history from the log (every router served shares one history)."""
    routers = routers_of(app[GATEWAY].routers.router)
    if not routers:
        return
    try:
        await routers[0].trips.load()
    except Exception as exc:  # whatever the backend raises: the history starts empty then
        log.warning("could not read the breakers' trips from the log: %s", exc)


def breakers_report(serving: Serving, now: float | None = None) -> dict[str, Any]:
    routers = routers_of(serving)
    policy, board = serving.policy, serving.shared
    states: dict[str, BreakerState] = {
        deployment: "closed" for spec in policy.models.values() for deployment in spec.deployments}
    states.update(worst_breaker_states(serving))  # closed until a call says otherwise
    rows = []
    for deployment in sorted(states):
        remote = 0.0 if board is None else board.breakers.open_for(deployment)
        state = "open" if remote > 0 and states[deployment] == "closed" else states[deployment]
        rows.append({"deployment": deployment, "state": state,
                     "open_by_replica_s": round(remote, 3)})
    calling = policy.calling
    history = routers[0].trips if routers else None
    trips = history.recent(TRIPS_SHOWN) if history is not None else []
    return {"now": time.time() if now is None else now,
            "failures_to_open": calling.breaker_failures,
            "cooldown_s": calling.breaker_cooldown_s, "shared": board is not None,
            "persisted": history is not None and history.persisted,
            "open": sum(r["state"] != "closed" for r in rows), "breakers": rows,
            "trips": [t.to_dict() for t in trips]}


async def get_breakers(request: web.Request) -> web.Response:
    return web.json_response(breakers_report(request.app[GATEWAY].routers.router))
