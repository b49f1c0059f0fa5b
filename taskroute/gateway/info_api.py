"""The small endpoints: models, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import os

import msgspec
from aiohttp import web

from taskroute.gateway.context import GATEWAY
from taskroute.gateway.openapi import openapi_document
from taskroute.providers.keys import missing_keys, no_key_message


async def models(request: web.Request) -> web.Response:
    """The names a client may put in `model`: routing names, task classes, the policy's models
    and their aliases."""
    gateway = request.app[GATEWAY]
    policy = gateway.routers.router.policy
    created = int(gateway.started_at)
    names = ["auto", "taskroute", *(f"taskroute/{task}" for task in policy.tasks)]
    data = [{"id": n, "object": "model", "created": created, "owned_by": "taskroute"}
            for n in names]
    data += [{"id": model_id, "object": "model", "created": created,
              "owned_by": spec.provider, "taskroute": {"tier": spec.tier}}
             for model_id, spec in policy.models.items()]
    data += [{"id": alias, "object": "model", "created": created,
              "owned_by": policy.models[target].provider,
              "taskroute": {"tier": policy.models[target].tier, "alias_of": target}}
             for alias, target in policy.aliases.items()]
    return web.Response(body=msgspec.json.encode({"object": "list", "data": data}),
                        content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: serving, and at least one deployment can be called (has its key)."""
    gateway = request.app[GATEWAY]
    if not gateway.ready:
        return web.json_response({"status": "shutting down"}, status=503)
    policy = gateway.routers.router.policy
    reason = no_key_message(policy)
    if reason is not None:
        return web.json_response({"status": "not ready", "reason": reason,
                                  "policy": policy.name}, status=503)
    body = {"status": "ready", "policy": policy.name, "in_flight": gateway.in_flight - 1,
            "pid": os.getpid()}  # which worker answered, under `serve --workers`
    missing = missing_keys(policy)
    if missing:  # some providers only: served, by the others
        body["providers_without_keys"] = sorted(missing)
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[GATEWAY].metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=msgspec.json.encode(openapi_document()),
                        content_type="application/json")
