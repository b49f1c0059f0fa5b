"""Errors rendered in one place, in each API's own JSON shape.

The status comes from the exception class (`status_code`); the message is the exception's own,
which never holds a key. Anything unexpected becomes a bare 500 whose details go to the server
log only. Upstream failures (502/504) list the attempts the chain made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from taskroute.exceptions import (
    AuthenticationFailed,
    BudgetExhausted,
    ChainExhausted,
    ChainTooLong,
    ContextWindowExceeded,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    RequestTooLarge,
    TaskrouteError,
    TooManyRequests,
    UnknownModel,
    UnsupportedMediaType,
    UpstreamError,
    UpstreamTimeout,
)
from taskroute.records import Api

log = logging.getLogger("taskroute.gateway")

_OPENAI_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error",
    409: "conflict_error", 413: "invalid_request_error", 415: "invalid_request_error",
    429: "rate_limit_error", 500: "server_error", 502: "upstream_error",
    503: "server_overloaded", 504: "timeout_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error",
    409: "invalid_request_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error",
}
_CODES: dict[type[Exception], str] = {
    UnknownModel: "model_not_found", AuthenticationFailed: "invalid_api_key",
    RequestTooLarge: "request_too_large", TooManyRequests: "rate_limit_exceeded",
    RateLimited: "rate_limit_exceeded",
    UnsupportedMediaType: "unsupported_media_type",
    ContextWindowExceeded: "context_length_exceeded", ChainTooLong: "context_length_exceeded",
    UpstreamTimeout: "upstream_timeout", ChainExhausted: "chain_exhausted",
}


def from_http(exc: web.HTTPException) -> TaskrouteError:
    """aiohttp's own refusals (no route, wrong method, body too large) as our errors."""
    if exc.status == 413:
        return RequestTooLarge("the request body is larger than the gateway accepts")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed; use {exc.headers.get('Allow', 'POST')}")
    if exc.status == 404:
        return NotFound("no such endpoint")
    return InvalidRequest(exc.reason or "bad request")


def status_of(exc: BaseException) -> int:
    """The status its class gives it (a chain that failed only by timing out is raised as
    `ChainTimedOut`, a 504)."""
    return exc.status_code if isinstance(exc, TaskrouteError) else 500


def error_type(exc: BaseException, api: Api) -> str:
    """The error's `type` in `api`'s JSON, from its status (a caller's mistake that has no
    type of its own is an invalid request, never a server error)."""
    status = status_of(exc)
    types = _ANTHROPIC_TYPES if api == "anthropic" else _OPENAI_TYPES
    if status in types:
        return types[status]
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error" if api == "anthropic" else "server_error"


def render(exc: BaseException, api: Api) -> web.Response:
    return web.Response(status=status_of(exc), body=msgspec.json.encode(error_body(exc, api)),
                        content_type="application/json", headers=error_headers(exc))


def error_body(exc: BaseException, api: Api) -> dict[str, Any]:
    """The error in `api`'s JSON shape (an unexpected one is logged here, with its traceback)."""
    if not isinstance(exc, TaskrouteError):
        log.error("unexpected error", exc_info=exc)
        message = "internal error in the gateway; see its log"
    else:
        message = exc.message
    if api == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {
            "type": error_type(exc, api), "message": message}}
        detail = body["error"]
    else:
        body = {"error": {
            "message": message, "type": error_type(exc, api),
            "param": getattr(exc, "param", None), "code": _code(exc)}}
        detail = body["error"]
    if isinstance(exc, UpstreamError):
        detail["attempts"] = summarise_attempts(getattr(exc, "attempts", ()))
    return body


def error_headers(exc: BaseException) -> dict[str, str]:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, TooManyRequests | RateLimited | BudgetExhausted) and retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return headers


def error_event(exc: BaseException, api: Api) -> bytes:
    """The error as one SSE event, for a stream that already started."""
    message = exc.message if isinstance(exc, TaskrouteError) else "internal error"
    if api == "anthropic":
        payload = msgspec.json.encode({"type": "error", "error": {
            "type": error_type(exc, api), "message": message}})
        return b"event: error\ndata: " + payload + b"\n\n"
    if api == "responses":  # the Responses API's own `error` event
        payload = msgspec.json.encode({"type": "error", "code": _code(exc) or error_type(
            exc, api), "message": message, "param": None, "sequence_number": 0})
        return b"event: error\ndata: " + payload + b"\n\n"
    payload = msgspec.json.encode({"error": {
        "message": message, "type": error_type(exc, api), "param": None, "code": _code(exc)}})
    return b"data: " + payload + b"\n\n"


def summarise_attempts(attempts: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"model": getattr(a, "model", None), "status": getattr(a, "status", None),
         "error": getattr(a, "error", None),
         "latency_ms": round(getattr(a, "latency_s", 0.0) * 1000, 1)}
        for a in attempts
    ]


def _code(exc: BaseException) -> str | None:
    if status_of(exc) == UpstreamTimeout.status_code:
        return "upstream_timeout"
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code
    return None
