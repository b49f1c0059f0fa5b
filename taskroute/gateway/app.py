"""`create_app(router, settings)`: the gateway as an aiohttp application, built on demand.

aiohttp.web was chosen by measurement over starlette+uvicorn (bench/server_choice.py): in front of
the same instant upstream, one worker on 2 cores, it added about the same at concurrency 1 and
served 40-60 % more requests per second at concurrency 32.
"""

from __future__ import annotations

from aiohttp import web

from taskroute.gateway import anthropic_api, info_api, middleware, openai_api, quality_api
from taskroute.gateway.auth import Authenticator, RateLimiter
from taskroute.gateway.context import GATEWAY, Gateway, KeyStampedStore
from taskroute.gateway.metrics import GatewayMetrics
from taskroute.gateway.settings import GatewaySettings
from taskroute.router import Router
from taskroute.store.base import Store


def create_app(
    router: Router, settings: GatewaySettings | None = None, *, store: Store | None = None
) -> web.Application:
    """The gateway app. Requests are logged through the router's store (or `store`, which is
    then given to the router); the quality endpoints read that store when it is also a
    `LogReader`. The app owns both from here on: closing it flushes the log and closes them."""
    settings = settings or GatewaySettings()
    store = store or router.store
    _stamp_keys(router, store)
    gateway = Gateway(
        router=router, settings=settings, metrics=GatewayMetrics(),
        auth=Authenticator(settings.api_keys), limiter=RateLimiter(settings.rate_limit_rpm),
        store=store,
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[middleware.errors, middleware.auth],
    )
    app[GATEWAY] = gateway
    app.router.add_post("/v1/chat/completions", openai_api.chat_completions)
    app.router.add_post("/v1/messages", anthropic_api.messages)
    app.router.add_get("/v1/models", info_api.models)
    app.router.add_get("/healthz", info_api.healthz)
    app.router.add_get("/readyz", info_api.readyz)
    app.router.add_get("/metrics", info_api.metrics)
    app.router.add_get("/openapi.json", info_api.openapi)
    app.on_startup.append(_ready)
    app.on_shutdown.append(_draining)
    app.on_cleanup.append(_close)
    quality_api.install(app)  # route quality: variants, shadow, budgets, stats, feedback, reload
    return app


async def _ready(app: web.Application) -> None:
    app[GATEWAY].ready = True


async def _draining(app: web.Application) -> None:
    app[GATEWAY].ready = False


async def _close(app: web.Application) -> None:
    router = app[GATEWAY].router
    try:
        await router.aclose()
    finally:
        if router.store is not None:
            await router.store.flush()
            await router.store.aclose()


def _stamp_keys(router: Router, store: Store | None) -> None:
    """Log through `store`, each entry stamped with its key's id."""
    if store is None or isinstance(store, KeyStampedStore):
        return
    stamped = KeyStampedStore(store)
    if router._engine is not None:  # the call path took its store when it was built
        router._engine.store = stamped
    router.store = stamped
