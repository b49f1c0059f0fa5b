"""The stand-in's control endpoint, for driving it from another process (benches): SIMULATED.

`POST /_sim/behave {"model": M, ...Behaviour fields}` sets M's behaviour (no fields: normal);
`POST /_sim/profile {"model": M, ...ModelProfile fields}` sets its profile;
`POST /_sim/reset` forgets behaviours and counters. Served only when asked for
(`SimulatedUpstream(control=True)`, `--control` on the command line), on the stand-in alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from aiohttp import web

from taskroute.providers.simulated.behaviours import BehaviourBook
from taskroute.providers.simulated.profiles import Behaviour, ModelProfile

_BEHAVIOUR = {f.name for f in dataclasses.fields(Behaviour)}
_PROFILE = {f.name for f in dataclasses.fields(ModelProfile)}


def add_routes(app: web.Application, upstream: BehaviourBook,
               profiles: dict[str, ModelProfile]) -> None:
    """`upstream`: the stand-in (its `reset` forgets its counters too); `profiles`: its own."""

    async def behave(request: web.Request) -> web.Response:
        model, fields = await _read(request, _BEHAVIOUR)
        upstream.behave(model, **fields)
        return web.json_response({"model": model, "behaviour": fields})

    async def profile(request: web.Request) -> web.Response:
        model, fields = await _read(request, _PROFILE)
        profiles[model] = ModelProfile(**fields)
        return web.json_response({"model": model, "profile": fields})

    async def reset(request: web.Request) -> web.Response:
        upstream.reset()
        return web.json_response({"reset": True})

    app.router.add_post("/_sim/behave", behave)
    app.router.add_post("/_sim/profile", profile)
    app.router.add_post("/_sim/reset", reset)


async def _read(request: web.Request, known: set[str]) -> tuple[str, dict[str, Any]]:
    try:
        data = msgspec.json.decode(await request.read())
    except msgspec.DecodeError as exc:
        raise web.HTTPBadRequest(text=f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise web.HTTPBadRequest(text='a JSON object with a "model" string is required')
    model = data.pop("model")
    unknown = sorted(set(data) - known)
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown fields: {', '.join(unknown)}")
    return model, data
