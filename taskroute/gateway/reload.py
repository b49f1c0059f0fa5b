"""Policy reload: `POST /v1/taskroute/reload` with an admin-scope key (`gateway/keys.py`; as a
bearer key or in `X-Taskroute-Admin-Key`) or SIGHUP. Without keys, only SIGHUP reloads.

The running policy's file is loaded again and the new router — `router.with_policy(new)`, the
same parts the caller built — is made on a worker thread (a learned-router file can take a while
to load; the classifier is loaded there too), then swapped in in one step. Requests and streams
in flight finish on the router they started with, which is closed after its last one
(`gateway/serving.py`). A bad file is refused (400) and the running policy stays. Reload needs
no request log. With state shared by replicas (Redis), a reload done here is broadcast and every
other replica reloads the file itself — validating it itself, keeping its policy if refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from taskroute.exceptions import CallerError, Forbidden, InvalidRequest, PolicyError
from taskroute.experiment import Serving, reloaded
from taskroute.gateway.context import GATEWAY, Gateway
from taskroute.gateway.keys import ENV_BY_SCOPE
from taskroute.policy.loader import load_policy
from taskroute.policy.model import Policy

log = logging.getLogger("taskroute.gateway")


@dataclass(slots=True)
class Reloads:
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


RELOADS: web.AppKey[Reloads] = web.AppKey("taskroute_reloads", Reloads)


def install(app: web.Application) -> None:
    app[RELOADS] = Reloads()
    app.router.add_post("/v1/taskroute/reload", post_reload)
    app.on_startup.append(_start)
    app.on_cleanup.insert(0, _stop)


async def post_reload(request: web.Request) -> web.Response:
    # with keys, the auth middleware let only an admin key through
    if not request.app[GATEWAY].auth.enabled:
        raise Forbidden(f"policy reload over HTTP is off: set {ENV_BY_SCOPE['admin']} (or an "
                        "admin key in the keys file) to enable it, or send SIGHUP")
    # shielded: a caller that hangs up (which cancels its handler) does not stop a reload
    policy = await asyncio.shield(reload_policy(request.app))
    return web.json_response({"reloaded": True, "policy": policy.name,
                              "variants": [v.name for v in policy.variants],
                              "shadow": policy.shadow.name if policy.shadow else None})


async def reload_policy(
    app: web.Application, how: str = "POST /v1/taskroute/reload", *, broadcast: bool = True,
) -> Policy:
    """Serve the running policy's file as it is now (see the module docstring); with shared
    state, ask the other replicas to do the same (unless the ask came from one). Each outcome
    is logged and counted (`taskroute_reloads_total{outcome="ok|refused"}`)."""
    gateway = app[GATEWAY]
    try:
        policy = await _reload(gateway, broadcast=broadcast)
    except CallerError as exc:
        gateway.metrics.reloads.labels("refused").inc()
        log.warning("policy reload (%s) refused: %s", how, exc)
        raise
    gateway.metrics.reloads.labels("ok").inc()
    log.info("policy reloaded (%s) from %s: now serving %s", how, policy.source, policy.name)
    return policy


async def _reload(gateway: Gateway, *, broadcast: bool) -> Policy:
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
    if broadcast and new.shared is not None:
        # every other replica reloads the file itself (and validates it itself)
        await new.shared.broadcast.publish_reload()
    return new.policy


async def _start(app: web.Application) -> None:
    reloads = app[RELOADS]

    def on_sighup() -> None:
        task = asyncio.create_task(_on_sighup(app))
        reloads.tasks.add(task)
        task.add_done_callback(reloads.tasks.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
    shared = app[GATEWAY].routers.router.shared
    if shared is not None:
        async def on_broadcast() -> None:
            try:
                policy = await reload_policy(app, "broadcast from another replica",
                                             broadcast=False)
            except CallerError as exc:
                log.error("reload asked by another replica: %s", exc)
            else:
                log.info("reload asked by another replica: serving policy %s", policy.name)

        shared.broadcast.on_reload(on_broadcast)


async def _on_sighup(app: web.Application) -> None:
    with contextlib.suppress(CallerError):  # logged and counted by reload_policy
        await reload_policy(app, "SIGHUP")


async def _stop(app: web.Application) -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    tasks = list(app[RELOADS].tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
