"""Route quality over HTTP: stats, time series, the A/B report, feedback and the dashboard.
`install(app)` adds them to the gateway (one line in `create_app`); reload is `gateway/reload.py`.

    GET  /v1/taskroute/stats?since=24h&by=route|class|model|tier|policy
    GET  /v1/taskroute/timeseries?since=24h&step=auto   per minute up to 6 hours, else hourly
    GET  /v1/taskroute/ab?since=7d
    GET  /v1/taskroute/shadow?since=24h   the shadow policy against the served one
    GET  /v1/taskroute/breakers           circuit breakers and their recent trips
    POST /v1/taskroute/feedback     {"request_id", "score" | "thumbs", "corrected", "task",
                                     "text"}; a "task" is one of the policy's classes
    GET  /dashboard

The endpoints read the log through the `LogReader` Protocol (`taskroute.store`): the gateway's
store when it is one (SQLite's reads run on its own worker thread, never on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from taskroute.exceptions import InvalidRequest
from taskroute.gateway import breakers_api
from taskroute.gateway.auth import IDENTITY
from taskroute.gateway.context import GATEWAY, key_id, read_json
from taskroute.policy.model import Policy
from taskroute.quality import feedback, metrics, shadow, timeseries
from taskroute.quality.budgets import SpendTracker
from taskroute.quality.window import parse_window
from taskroute.store.base import LogReader

log = logging.getLogger("taskroute.gateway")
CATCH_UP_EVERY_S = 10.0


@dataclass(slots=True)
class Quality:
    """What the quality endpoints share: the log's reader, the running policy and the
    background tasks."""

    reader: LogReader
    policy: Callable[[], Policy]
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


QUALITY: web.AppKey[Quality] = web.AppKey("taskroute_quality", Quality)


def install(app: web.Application) -> None:
    """Add the quality endpoints, when the gateway's log can be read back."""
    gateway = app[GATEWAY]
    if isinstance(gateway.store, LogReader):
        app[QUALITY] = Quality(gateway.store, lambda: app[GATEWAY].routers.router.policy)
        add_read_routes(app)
        breakers_api.install(app)
        app.router.add_post("/v1/taskroute/feedback", post_feedback)
        app.on_startup.append(_start)
        app.on_cleanup.insert(0, _stop)  # before the store closes: the tasks read from it


def add_read_routes(app: web.Application) -> None:
    from taskroute.gateway import dashboard

    app.router.add_get("/v1/taskroute/stats", get_stats)
    app.router.add_get("/v1/taskroute/timeseries", get_timeseries)
    app.router.add_get("/v1/taskroute/ab", get_ab)
    app.router.add_get("/v1/taskroute/shadow", get_shadow)
    app.router.add_get("/dashboard", dashboard.page)


def standalone_app(reader: LogReader, policy: Policy | None = None) -> web.Application:
    """Just the read endpoints and the dashboard over a log (the stats bench uses it). The
    caller keeps `reader` and closes it."""
    from taskroute.policy.loader import load_default_policy

    chosen = policy or load_default_policy()
    app = web.Application()
    app[QUALITY] = Quality(reader, lambda: chosen)
    add_read_routes(app)
    return app


# -- reading ------------------------------------------------------------------------------------


def _since(request: web.Request, default: str = "24h") -> float | None:
    return parse_window(request.query.get("since", default))


async def get_stats(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    by = request.query.get("by", "route")
    if by not in metrics.BY_CHOICES:
        raise InvalidRequest(f"'by' is one of {', '.join(metrics.BY_CHOICES)}, not {by!r}")
    report = await quality.reader.route_stats(
        since_s=_since(request), by=by, tier_order=quality.policy().tier_names)
    return web.json_response(report)


async def get_timeseries(request: web.Request) -> web.Response:
    """Minutes for a window of up to six hours, hours beyond (`step=minute|hour|auto`); with a
    window, every bucket in it, empty ones as zeros, and the running saving on each."""
    quality = request.app[QUALITY]
    model, price = timeseries.baseline(quality.policy())
    since_s = _since(request)
    try:
        step = timeseries.choose_step(request.query.get("step", "auto"), since_s)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="step") from None
    now = time.time()
    report = await quality.reader.timeseries(
        since_s=since_s, baseline_model=model, baseline_price=price, now=now, step=step)
    if since_s is not None:
        report = timeseries.filled(report, now - since_s, now)
    else:
        report = timeseries.filled(report, report["points"][0]["t"] if report["points"] else now,
                                   now)
    return web.json_response(report)


async def get_ab(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    policy = quality.policy()
    return web.json_response(await quality.reader.ab_report(
        since_s=_since(request, "7d"), tier_order=policy.tier_names,
        variants=[v.name for v in policy.variants]))


async def get_shadow(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    return web.json_response(await quality.reader.shadow_report(
        since_s=_since(request), prices=shadow.prices(quality.policy())))


# -- writing ------------------------------------------------------------------------------------


async def post_feedback(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    body = await read_json(request, 64 * 1024)
    given = feedback.parse_feedback(body, request_id=request.headers.get("X-Taskroute-Request-Id"))
    feedback.check_task(given, task_classes(quality.policy()))
    ident = request.get(IDENTITY)   # a user key rates only its own requests; admin any
    owner = ident.key_id if ident is not None and ident.scope != "admin" else None
    await quality.reader.add_feedback(given, key_id=key_id(request), owner=owner)
    return web.json_response({"request_id": given.request_id, "recorded": True}, status=201)


def task_classes(policy: Policy) -> set[str]:
    """The classes a feedback's `task` may name: the served policy's, its A/B variants' and
    its shadow's (a candidate may add the class the misrouted requests were)."""
    policies = [policy, *(v.policy for v in policy.variants if v.policy is not None)]
    if policy.shadow is not None:
        policies.append(policy.shadow)
    return {name for p in policies for name in p.tasks}


# -- lifecycle ----------------------------------------------------------------------------------


async def _start(app: web.Application) -> None:
    quality = app[QUALITY]
    router = app[GATEWAY].routers.router
    spend, shared = router.spend, router.shared
    if isinstance(spend, SpendTracker):
        spend.restore(await quality.reader.spend_today())
    seed = getattr(shared, "seed", None)
    if seed is not None:  # the first replica up today seeds the shared counters from the log
        await seed(await quality.reader.spend_today())
    quality.tasks.append(asyncio.create_task(_keep_rolled_up(quality)))


async def _keep_rolled_up(quality: Quality) -> None:
    while True:
        await asyncio.sleep(CATCH_UP_EVERY_S)
        try:
            await quality.reader.catch_up()
        except Exception as exc:  # whatever the backend raises: the next round tries again
            log.warning("could not roll up the log: %s", exc)


async def _stop(app: web.Application) -> None:
    quality = app[QUALITY]
    for task in quality.tasks:
        task.cancel()
    await asyncio.gather(*quality.tasks, return_exceptions=True)
