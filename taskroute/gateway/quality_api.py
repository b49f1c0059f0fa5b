"""Route quality over HTTP: stats, time series, the A/B report, feedback, policy reload and the
dashboard. `install(app)` adds them to the gateway (one line in `create_app`).

    GET  /v1/taskroute/stats?since=24h&by=route|class|model|tier|policy
    GET  /v1/taskroute/timeseries?since=24h
    GET  /v1/taskroute/ab?since=7d
    POST /v1/taskroute/feedback     {"request_id", "score" | "thumbs", "corrected", "text"}
    POST /v1/taskroute/reload       admin key in X-Taskroute-Admin-Key (or SIGHUP)
    GET  /dashboard

The endpoints read the log through the `LogReader` Protocol (`taskroute.store`): the gateway's
store when it is one (SQLite's reads run on its own worker thread, never on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from taskroute.exceptions import CallerError, Forbidden, InvalidRequest, PolicyError
from taskroute.experiment import Serving, reloaded
from taskroute.gateway.context import GATEWAY, key_id, read_json
from taskroute.policy.loader import load_policy
from taskroute.policy.model import Policy
from taskroute.quality import feedback, metrics, timeseries
from taskroute.quality.budgets import SpendTracker
from taskroute.quality.window import parse_window
from taskroute.store.base import LogReader

log = logging.getLogger("taskroute.gateway")
ENV_ADMIN_KEYS = "TASKROUTE_ADMIN_KEYS"
CATCH_UP_EVERY_S = 10.0


@dataclass(slots=True)
class Quality:
    """What the quality endpoints share: the log's reader, the running policy, the admin keys
    and the background tasks."""

    reader: LogReader
    policy: Callable[[], Policy]
    admin_keys: tuple[bytes, ...] = ()
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


QUALITY: web.AppKey[Quality] = web.AppKey("taskroute_quality", Quality)


def install(app: web.Application) -> None:
    """Add the quality endpoints (reading the gateway's log) and the reload endpoint."""
    gateway = app[GATEWAY]
    keys = gateway.settings.extra.get("admin_keys") or [
        k.strip() for k in os.environ.get(ENV_ADMIN_KEYS, "").split(",") if k.strip()]
    if isinstance(gateway.store, LogReader):
        app[QUALITY] = Quality(gateway.store, lambda: app[GATEWAY].routers.router.policy,
                               tuple(str(k).encode() for k in keys))
        add_read_routes(app)
        app.router.add_post("/v1/taskroute/feedback", post_feedback)
        app.on_startup.append(_start)
        app.on_cleanup.insert(0, _stop)  # before the store closes: the tasks read from it
    app.router.add_post("/v1/taskroute/reload", post_reload)


def add_read_routes(app: web.Application) -> None:
    from taskroute.gateway import dashboard

    app.router.add_get("/v1/taskroute/stats", get_stats)
    app.router.add_get("/v1/taskroute/timeseries", get_timeseries)
    app.router.add_get("/v1/taskroute/ab", get_ab)
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
    quality = request.app[QUALITY]
    model, price = timeseries.baseline(quality.policy())
    return web.json_response(await quality.reader.timeseries(
        since_s=_since(request), baseline_model=model, baseline_price=price))


async def get_ab(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    policy = quality.policy()
    return web.json_response(await quality.reader.ab_report(
        since_s=_since(request, "7d"), tier_order=policy.tier_names,
        variants=[v.name for v in policy.variants]))


# -- writing ------------------------------------------------------------------------------------


async def post_feedback(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    body = await read_json(request, 64 * 1024)
    given = feedback.parse_feedback(body, request_id=request.headers.get("X-Taskroute-Request-Id"))
    await quality.reader.add_feedback(given, key_id=key_id(request))
    return web.json_response({"request_id": given.request_id, "recorded": True}, status=201)


async def post_reload(request: web.Request) -> web.Response:
    keys = request.app[QUALITY].admin_keys if QUALITY in request.app else ()
    given = request.headers.get("X-Taskroute-Admin-Key", "").encode()
    if not keys:
        raise Forbidden(f"policy reload is off: set {ENV_ADMIN_KEYS} to enable it")
    if not any(hmac.compare_digest(given, key) for key in keys):
        raise Forbidden("reloading the policy needs the admin key in X-Taskroute-Admin-Key")
    policy = await reload_policy(request.app)
    return web.json_response({"reloaded": True, "policy": policy.name,
                              "variants": [v.name for v in policy.variants],
                              "shadow": policy.shadow.name if policy.shadow else None})


async def reload_policy(app: web.Application) -> Policy:
    """Load the running policy's file again and serve it; a bad file is refused (400) and the
    running policy stays. The new router is built off the event loop (a learned-router file
    can take a while to load) and swapped in in one step; requests and streams in flight finish
    on the router they started with, which is closed after its last one."""
    gateway = app[GATEWAY]
    old = gateway.routers.router
    source = old.policy.source
    if not source or source.startswith("<"):
        raise InvalidRequest("the running policy was not loaded from a file; nothing to reload")

    def build() -> Serving:
        return reloaded(old, load_policy(source)).warm()

    try:
        new = await asyncio.to_thread(build)
    except PolicyError as exc:
        raise InvalidRequest(f"the policy file was refused, the running policy stays: {exc}"
                             ) from None
    if gateway.routers.router is not old:
        await new.aclose()  # another reload won the race; serve that one
        raise InvalidRequest("another reload finished first; the policy it loaded is served")
    gateway.routers.swap(new)
    log.info("policy reloaded from %s", source)
    return new.policy


# -- lifecycle ----------------------------------------------------------------------------------


async def _start(app: web.Application) -> None:
    quality = app[QUALITY]
    spend = app[GATEWAY].routers.router.spend
    if isinstance(spend, SpendTracker):
        spend.restore(await quality.reader.spend_today())
    quality.tasks.append(asyncio.create_task(_keep_rolled_up(quality)))
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, lambda: quality.tasks.append(asyncio.create_task(_on_sighup(app))))


async def _on_sighup(app: web.Application) -> None:
    try:
        await reload_policy(app)
    except CallerError as exc:
        log.error("SIGHUP: %s", exc)


async def _keep_rolled_up(quality: Quality) -> None:
    while True:
        await asyncio.sleep(CATCH_UP_EVERY_S)
        try:
            await quality.reader.catch_up()
        except Exception as exc:  # whatever the backend raises: the next round tries again
            log.warning("could not roll up the log: %s", exc)


async def _stop(app: web.Application) -> None:
    quality = app[QUALITY]
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    for task in quality.tasks:
        task.cancel()
    await asyncio.gather(*quality.tasks, return_exceptions=True)
