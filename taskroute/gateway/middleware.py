"""The gateway's two middlewares: errors rendered in one place (outermost), then auth and rate
limits. Errors take the shape of the API the path belongs to."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from taskroute.exceptions import TaskrouteError
from taskroute.gateway.auth import OPEN_PATHS
from taskroute.gateway.context import GATEWAY, KEY_ID
from taskroute.gateway.errors import from_http, render
from taskroute.records import Api


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    api: Api = "anthropic" if request.path.startswith("/v1/messages") else "openai"
    gateway.in_flight += 1
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render(from_http(exc), api)
    except TaskrouteError as exc:
        response = render(exc, api)
    except Exception as exc:  # never a traceback to the caller; the log has it
        response = render(exc, api)
    finally:
        gateway.in_flight -= 1
    route = request.match_info.route.resource
    gateway.metrics.response(route.canonical if route is not None else "unmatched",
                             response.status)
    return response


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    gateway = request.app[GATEWAY]
    headers = request.headers
    key_id = gateway.auth.identify(headers.get("Authorization"), headers.get("x-api-key"))
    if gateway.limiter.rpm:
        gateway.limiter.check(key_id or request.remote or "anonymous")
    if key_id is not None:
        request[KEY_ID] = key_id
    return await handler(request)
