"""The gateway's two middlewares: errors rendered in one place (outermost), then auth and rate
limits. Errors take the shape of the API the path belongs to; every response carries its
request id, and a chat request refused before it was routed is logged as a `Refusal`."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from taskroute.exceptions import TaskrouteError, TooManyRequests
from taskroute.gateway.auth import OPEN_PATHS
from taskroute.gateway.context import CHAT, GATEWAY, KEY_ID, REQUEST_ID, Gateway, new_request_id
from taskroute.gateway.errors import error_type, from_http, render
from taskroute.records import Api
from taskroute.store.base import Refusal

CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/messages"})


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    api: Api = "anthropic" if request.path.startswith("/v1/messages") else "openai"
    request_id = request[REQUEST_ID] = new_request_id()
    error: BaseException | None = None
    gateway.in_flight += 1
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = from_http(exc)
        response = render(error, api)
    except Exception as exc:  # never a traceback to the caller; the log has it
        error = exc
        response = render(exc, api)
    finally:
        gateway.in_flight -= 1
    if not response.prepared:
        response.headers.setdefault("X-Taskroute-Request-Id", request_id)
    if error is not None and request.path in CHAT_PATHS and getattr(error, "record", None) is None:
        _log_refusal(gateway, request, api, error, response.status)
    route = request.match_info.route.resource
    gateway.metrics.response(route.canonical if route is not None else "unmatched",
                             response.status)
    return response


def _log_refusal(
    gateway: Gateway, request: web.Request, api: Api, error: BaseException, status: int,
) -> None:
    """A chat request that ended before it had a route (the call path logs the rest)."""
    store = gateway.store
    if store is None:
        return
    chat = request.get(CHAT)
    log_content = gateway.routers.router.policy.log_content
    store.add_refused(Refusal(
        request_id=request[REQUEST_ID], ts=time.time(), api=api, path=request.path,
        http_status=status, type=error_type(error, api),
        reason=error.message if isinstance(error, TaskrouteError) else "internal error",
        model=chat.model if chat is not None else None,
        task=request.headers.get("X-Taskroute-Task") or None,
        user=chat.end_user if chat is not None else None,
        api_key_id=request.get(KEY_ID),
        prompt=chat.all_text if chat is not None and log_content else None,
    ))


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    gateway = request.app[GATEWAY]
    headers = request.headers
    key_id = gateway.auth.identify(headers.get("Authorization"), headers.get("x-api-key"))
    if key_id is not None:
        request[KEY_ID] = key_id
    rpm = gateway.limiter.rpm
    shared = gateway.routers.router.shared
    if rpm and shared is None:
        gateway.limiter.check(key_id or request.remote or "anonymous")
    elif rpm and shared is not None and request.path not in CHAT_PATHS:
        # a chat request takes its token in the one round trip before deciding (shared_step)
        fail_closed = gateway.routers.router.policy.shared_state_down == "fail closed"
        wait = await shared.rate.take(key_id or request.remote or "anonymous", rpm,
                                      fail_closed=fail_closed)
        if wait is not None:
            raise TooManyRequests(f"rate limit of {rpm} requests per minute reached; "
                                  f"retry in {wait:.0f}s", retry_after=wait)
    return await handler(request)
