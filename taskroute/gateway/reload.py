"""Policy reload: `POST /v1/taskroute/reload` (admin key in `X-Taskroute-Admin-Key`, from
`TASKROUTE_ADMIN_KEYS` or the settings' `admin_keys`) or SIGHUP.

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
import hmac
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from taskroute.exceptions import CallerError, Forbidden, InvalidRequest, PolicyError
from taskroute.experiment import Serving, reloaded
from taskroute.gateway.context import GATEWAY
from taskroute.policy.loader import load_policy
from taskroute.policy.model import Policy

log = logging.getLogger("taskroute.gateway")
ENV_ADMIN_KEYS = "TASKROUTE_ADMIN_KEYS"


@dataclass(slots=True)
class Reloads:
    admin_keys: tuple[bytes, ...] = ()
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


RELOADS: web.AppKey[Reloads] = web.AppKey("taskroute_reloads", Reloads)


def install(app: web.Application) -> None:
    keys = app[GATEWAY].settings.extra.get("admin_keys") or [
        k.strip() for k in os.environ.get(ENV_ADMIN_KEYS, "").split(",") if k.strip()]
    app[RELOADS] = Reloads(tuple(str(k).encode() for k in keys))
    app.router.add_post("/v1/taskroute/reload", post_reload)
    app.on_startup.append(_start)
    app.on_cleanup.insert(0, _stop)


async def post_reload(request: web.Request) -> web.Response:
    keys = request.app[RELOADS].admin_keys
    given = request.headers.get("X-Taskroute-Admin-Key", "").encode()
    if not keys:
        raise Forbidden(f"policy reload is off: set {ENV_ADMIN_KEYS} to enable it")
    if not any(hmac.compare_digest(given, key) for key in keys):
        raise Forbidden("reloading the policy needs the admin key in X-Taskroute-Admin-Key")
    # shielded: a caller that hangs up (which cancels its handler) does not stop a reload
    policy = await asyncio.shield(reload_policy(request.app))
    return web.json_response({"reloaded": True, "policy": policy.name,
                              "variants": [v.name for v in policy.variants],
                              "shadow": policy.shadow.name if policy.shadow else None})


async def reload_policy(app: web.Application, *, broadcast: bool = True) -> Policy:
    """Serve the running policy's file as it is now (see the module docstring); with shared
    state, ask the other replicas to do the same (unless the ask came from one)."""
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
                policy = await reload_policy(app, broadcast=False)
            except CallerError as exc:
                log.error("reload asked by another replica: %s", exc)
            else:
                log.info("reload asked by another replica: serving policy %s", policy.name)

        shared.broadcast.on_reload(on_broadcast)


async def _on_sighup(app: web.Application) -> None:
    try:
        await reload_policy(app)
    except CallerError as exc:
        log.error("SIGHUP: %s", exc)


async def _stop(app: web.Application) -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    tasks = list(app[RELOADS].tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
