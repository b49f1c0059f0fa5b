"""Route quality over HTTP: stats, time series, the A/B report, feedback, policy reload and the
dashboard. `install(app)` adds them to the gateway (one line in `create_app`).

    GET  /v1/taskroute/stats?since=24h&by=route|class|model|tier|policy
    GET  /v1/taskroute/timeseries?since=24h
    GET  /v1/taskroute/ab?since=7d
    POST /v1/taskroute/feedback     {"request_id", "score" | "thumbs", "corrected", "text"}
    POST /v1/taskroute/reload       admin key in X-Taskroute-Admin-Key (or SIGHUP)
    GET  /dashboard

Every read of the log runs on one worker thread with its own connection, never on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import os
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from taskroute.exceptions import CallerError, InvalidRequest, PolicyError
from taskroute.experiment import Serving, reloaded
from taskroute.gateway.context import GATEWAY, key_id, read_json
from taskroute.policy.loader import load_policy
from taskroute.policy.model import Policy
from taskroute.quality import abtest, feedback, metrics, timeseries
from taskroute.quality.budgets import SpendTracker
from taskroute.quality.window import parse_window

log = logging.getLogger("taskroute.gateway")
T = TypeVar("T")
ENV_ADMIN_KEYS = "TASKROUTE_ADMIN_KEYS"
CATCH_UP_EVERY_S = 10.0


class Forbidden(CallerError):
    status_code = 403


@dataclass(slots=True)
class Quality:
    """The log reader: one thread, one connection."""

    db: Path
    policy: Callable[[], Policy]
    admin_keys: tuple[bytes, ...] = ()
    executor: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="taskroute-quality"))
    _conn: sqlite3.Connection | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def conn(self) -> sqlite3.Connection:  # only ever called on the worker thread
        if self._conn is None:
            from taskroute.store.migrations import migrate
            from taskroute.store.sqlite import connect

            self._conn = connect(self.db)
            migrate(self._conn)
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(self.conn()))

    def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
        self.executor.submit(shut).result()
        self.executor.shutdown()


QUALITY: web.AppKey[Quality] = web.AppKey("taskroute_quality", Quality)


def _db_of(store: Any) -> Path | None:
    while store is not None:
        if isinstance(getattr(store, "path", None), Path):
            return Path(store.path)
        store = getattr(store, "inner", None)
    return None


def install(app: web.Application) -> None:
    """Add the quality endpoints (reading the gateway's log) and the reload endpoint."""
    gateway = app[GATEWAY]
    db = _db_of(gateway.store)
    keys = gateway.settings.extra.get("admin_keys") or [
        k.strip() for k in os.environ.get(ENV_ADMIN_KEYS, "").split(",") if k.strip()]
    if db is not None:
        app[QUALITY] = Quality(db, lambda: app[GATEWAY].routers.router.policy,
                               tuple(str(k).encode() for k in keys))
        add_read_routes(app)
        app.router.add_post("/v1/taskroute/feedback", post_feedback)
        app.on_startup.append(_start)
        app.on_cleanup.append(_stop)
    app.router.add_post("/v1/taskroute/reload", post_reload)


def add_read_routes(app: web.Application) -> None:
    from taskroute.gateway import dashboard

    app.router.add_get("/v1/taskroute/stats", get_stats)
    app.router.add_get("/v1/taskroute/timeseries", get_timeseries)
    app.router.add_get("/v1/taskroute/ab", get_ab)
    app.router.add_get("/dashboard", dashboard.page)


def standalone_app(db: Path, policy: Policy | None = None) -> web.Application:
    """Just the read endpoints and the dashboard over a log file (the stats bench uses it)."""
    from taskroute.policy.loader import load_default_policy

    chosen = policy or load_default_policy()
    app = web.Application()
    app[QUALITY] = Quality(db, lambda: chosen)
    add_read_routes(app)
    app.on_cleanup.append(_stop)
    return app


# -- reading ------------------------------------------------------------------------------------


def _since(request: web.Request, default: str = "24h") -> float | None:
    return parse_window(request.query.get("since", default))


async def get_stats(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    by = request.query.get("by", "route")
    if by not in metrics.BY_CHOICES:
        raise InvalidRequest(f"'by' is one of {', '.join(metrics.BY_CHOICES)}, not {by!r}")
    since = _since(request)
    tiers = quality.policy().tier_names
    report = await quality.run(lambda conn: metrics.route_stats(
        conn, since_s=since, by=by, tier_order=tiers))
    return web.json_response(report)


async def get_timeseries(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    since_s = _since(request)
    policy = quality.policy()

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        metrics.try_catch_up(conn)
        import time

        return timeseries.hourly(conn, policy, None if since_s is None else time.time() - since_s)
    return web.json_response(await quality.run(read))


async def get_ab(request: web.Request) -> web.Response:
    quality = request.app[QUALITY]
    since_s = _since(request, "7d")
    policy = quality.policy()

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        import time

        metrics.try_catch_up(conn)
        return abtest.ab_report(
            conn, since=None if since_s is None else time.time() - since_s,
            tier_order=policy.tier_names, variants=[v.name for v in policy.variants])
    return web.json_response(await quality.run(read))


# -- writing ------------------------------------------------------------------------------------


async def post_feedback(request: web.Request) -> web.Response:
    gateway, quality = request.app[GATEWAY], request.app[QUALITY]
    body = await read_json(request, 64 * 1024)
    given = feedback.parse_feedback(body, request_id=request.headers.get("X-Taskroute-Request-Id"))
    key = key_id(request)
    try:
        await quality.run(lambda conn: feedback.record(conn, given, key_id=key))
    except feedback.UnknownRequest:
        store = gateway.store   # it may still be on its way to the log
        if store is not None:
            await store.flush()
        await quality.run(lambda conn: feedback.record(conn, given, key_id=key))
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
        await quality.run(spend.seed)
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
            await quality.run(metrics.try_catch_up)
        except sqlite3.Error as exc:
            log.warning("could not roll up the log: %s", exc)


async def _stop(app: web.Application) -> None:
    quality = app[QUALITY]
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    for task in quality.tasks:
        task.cancel()
    await asyncio.gather(*quality.tasks, return_exceptions=True)
    await asyncio.to_thread(quality.close)
