"""`create_app(router, settings)`: the gateway as an aiohttp application, built on demand.

aiohttp.web was chosen by measurement over starlette+uvicorn (bench/server_choice.py): in front of
the same instant upstream, one worker on 2 cores, it added about the same at concurrency 1 and
served 40-60 % more requests per second at concurrency 32.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from taskroute.experiment import Serving
from taskroute.gateway import (
    anthropic_api,
    embeddings_api,
    info_api,
    middleware,
    observed,
    openai_api,
    quality_api,
    reload,
    responses_api,
    signin,
)
from taskroute.gateway.auth import Authenticator, GuessBrake, RateLimiter
from taskroute.gateway.context import GATEWAY, Gateway
from taskroute.gateway.metrics import GatewayMetrics
from taskroute.gateway.serving import Current
from taskroute.gateway.settings import GatewaySettings
from taskroute.router import Router
from taskroute.store import retention
from taskroute.store.base import LogReader

log = logging.getLogger("taskroute.gateway")


def create_app(router: Serving, settings: GatewaySettings | None = None) -> web.Application:
    """The gateway app, serving exactly `router` (a `Router`, an `Experiment` of one router
    per A/B variant, or anything `Serving`): nothing about it is rebuilt or replaced. Requests
    are logged through the router's store. The app owns both from here on: closing it closes
    the router and flushes and closes the store; a reload swaps in `router.with_policy(...)`.
    Run it with `handler_cancellation=True` (as `taskroute serve` does) so that a client that
    hangs up cancels its upstream call and is logged as 499, "the client closed the
    connection"."""
    settings = settings or GatewaySettings()
    if isinstance(router, Router) and (router.policy.variants or router.policy.shadow):
        log.warning("the policy has A/B variants or a shadow, which a plain Router does not "
                    "serve: pass taskroute.experiment.compose(router) to serve them")
    gateway = Gateway(
        routers=Current(router), settings=settings, metrics=GatewayMetrics(),
        auth=Authenticator(settings.all_keys(), settings.key_salt,
                           GuessBrake(settings.wrong_key_limit, settings.wrong_key_window_s)),
        limiter=RateLimiter(settings.rate_limit_rpm),
        store=router.store,
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[middleware.errors, middleware.auth],
    )
    app[GATEWAY] = gateway
    gateway.metrics.watch_breakers(lambda: observed.breaker_states(gateway.routers))
    gateway.metrics.watch_budgets(lambda: observed.budget_headroom(gateway.routers))
    gateway.metrics.watch_store(router.store)
    app.router.add_post("/v1/chat/completions", openai_api.chat_completions)
    app.router.add_post("/v1/messages", anthropic_api.messages)
    app.router.add_post("/v1/messages/count_tokens", anthropic_api.count_tokens)
    app.router.add_post("/v1/responses", responses_api.responses)
    app.router.add_post("/v1/embeddings", embeddings_api.embeddings)
    app.router.add_get("/v1/models", info_api.models)
    app.router.add_get("/healthz", info_api.healthz)
    app.router.add_get("/readyz", info_api.readyz)
    app.router.add_get("/metrics", info_api.metrics)
    app.router.add_get("/openapi.json", info_api.openapi)
    app.on_startup.append(_ready)
    app.on_startup.append(_start_pruning)
    app.on_shutdown.append(_draining)
    app.on_shutdown.append(_stop_pruning)
    app.on_cleanup.append(_close)
    quality_api.install(app)  # route quality: stats, feedback, the dashboard
    reload.install(app)       # POST /v1/taskroute/reload and SIGHUP
    signin.install(app)       # the dashboard's sign-in, when there are keys
    return app


async def _ready(app: web.Application) -> None:
    gateway = app[GATEWAY]
    shared = gateway.routers.router.shared
    if shared is not None:
        await shared.start()
        gateway.metrics.watch_shared(shared)
    gateway.ready = True


_PRUNING: web.AppKey[asyncio.Task[None]] = web.AppKey("taskroute_pruning", asyncio.Task)


async def _start_pruning(app: web.Application) -> None:
    """The policy's `log keep`, applied in the background (read again each round, so a
    reload's new horizon holds)."""
    gateway = app[GATEWAY]
    if isinstance(gateway.store, LogReader):
        app[_PRUNING] = asyncio.create_task(retention.keep_pruning(
            gateway.store, lambda: gateway.routers.router.policy.log_keep_s))


async def _stop_pruning(app: web.Application) -> None:
    task = app.get(_PRUNING)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _draining(app: web.Application) -> None:
    app[GATEWAY].ready = False


async def _close(app: web.Application) -> None:
    gateway = app[GATEWAY]
    shared = gateway.routers.router.shared
    try:
        await gateway.routers.aclose()
    finally:
        try:
            if shared is not None:  # settlements still going out, then its connections
                await shared.aclose()
        finally:
            if gateway.store is not None:
                await gateway.store.flush()
                await gateway.store.aclose()
