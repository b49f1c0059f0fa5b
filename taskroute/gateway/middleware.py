"""The gateway's two middlewares: errors rendered in one place (outermost), then who may do
what (keys, scopes, rate limits; `gateway/auth.py`). Errors take the shape of the API the path
belongs to; every response carries its request id, and a chat request refused before it was
routed is logged as a `Refusal`."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from taskroute.exceptions import TaskrouteError, TooManyRequests
from taskroute.gateway import local, signin
from taskroute.gateway.auth import IDENTITY, check_scope, given_key, need_of
from taskroute.gateway.context import CHAT, GATEWAY, KEY_ID, REQUEST_ID, Gateway, new_request_id
from taskroute.gateway.errors import error_type, from_http, render
from taskroute.gateway.inputs import check_headers
from taskroute.records import Api
from taskroute.store.base import Refusal

CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v1/responses",
                        "/v1/embeddings"})


def api_of(path: str) -> Api:
    """The API a path belongs to (its errors are in that API's shape)."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    return _OPENAI_FAMILY.get(path, "openai")


_OPENAI_FAMILY: dict[str, Api] = {"/v1/responses": "responses", "/v1/embeddings": "embeddings"}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    api = api_of(request.path)
    request_id = request[REQUEST_ID] = new_request_id()
    error: BaseException | None = None
    gateway.in_flight += 1
    try:
        check_headers(request.headers)  # before auth, which compares a key's bytes
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
        task=_text(request.headers.get("X-Taskroute-Task")),
        user=chat.end_user if chat is not None else None,
        api_key_id=request.get(KEY_ID),
        prompt=chat.all_text if chat is not None and log_content else None,
    ))


def _text(header: str | None) -> str | None:
    """A header's value as text that can be stored (bytes that were not UTF-8 replaced)."""
    if not header:
        return None
    return header.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Without keys: this machine only (`gateway/local.py`). With keys: the request's key (or,
    for a read page, the dashboard's session) must have the scope its endpoint needs."""
    gateway = request.app[GATEWAY]
    need = need_of(request.path)
    if not gateway.auth.enabled:
        local.check(request, check_host=not gateway.settings.insecure_no_auth)
        if need != "open":
            await _take_token(request, gateway, request.remote or "anonymous", None)
        return await handler(request)
    if need == "open":
        return await handler(request)
    headers = request.headers
    given = given_key(headers.get("Authorization"), headers.get("x-api-key"),
                      headers.get("X-Taskroute-Admin-Key"))
    ident = signin.from_cookie(request) if given is None and need == "read" else None
    if ident is None:
        if given is None and request.path == signin.SIGNIN_FOR:
            return signin.page()
        ident = gateway.auth.identify(given, request.remote)
    request[IDENTITY] = ident
    request[KEY_ID] = ident.key_id
    check_scope(ident, need)
    await _take_token(request, gateway, ident.key_id or request.remote or "anonymous",
                      ident.rate_limit_rpm)
    return await handler(request)


async def _take_token(
    request: web.Request, gateway: Gateway, key: str, rpm: int | None
) -> None:
    """The request's rate-limit token, for `key` at `rpm` (a key's own limit, else the
    gateway's): in this process; with state shared by replicas, from it — a chat request's in
    the one round trip before deciding (`gateway/shared_step.py`)."""
    shared = gateway.routers.router.shared
    if shared is None:
        gateway.limiter.check(key, rpm)
        return
    rpm = rpm or gateway.limiter.rpm
    if not rpm or request.path in CHAT_PATHS:
        return
    fail_closed = gateway.routers.router.policy.shared_state_down == "fail closed"
    wait = await shared.rate.take(key, rpm, fail_closed=fail_closed)
    if wait is not None:
        raise TooManyRequests(f"rate limit of {rpm} requests per minute reached; "
                              f"retry in {wait:.0f}s", retry_after=wait)
