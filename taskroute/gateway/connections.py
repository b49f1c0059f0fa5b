"""The gateway's connections: aiohttp's `RequestHandler` (one per connection) with what it
lacks against slow and hostile clients.

- A request's head must arrive within `header_timeout_s` of its first byte (of the connection
  opening, for its first request), or the client gets a 408 and the connection closes.
- A request's body must arrive within `body_timeout_s` of its head: the handler reading it
  gets a 408 (`read_json`), and the connection closes after the answer.
- Idle keep-alive connections close after `keepalive_timeout_s` (aiohttp's own timer).
- Over `max_connections` open connections, a new one gets a 503 with `Retry-After` and closes.
- What aiohttp's parser refuses (a header over the size limit, a malformed request line) is
  answered in the API's error JSON with one log line, instead of aiohttp's plain text and a
  traceback.

Timers are armed for a connection's first head, for a later head that does not come whole in
one read, and for a body still arriving after its head: a request on a kept-alive connection
whose head and body come in one read (nearly all) arms none. `GatewayRunner` is
`web.AppRunner` serving its connections with this handler.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import http_exceptions, web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from taskroute.exceptions import (
    HeadersTooLarge,
    InvalidRequest,
    RequestTimeout,
    TaskrouteError,
    TooManyConnections,
)
from taskroute.gateway.errors import error_body, error_headers, render, status_of
from taskroute.records import Api

log = logging.getLogger("taskroute.gateway")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1024


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose connections are `GuardedHandler`s under `limits`."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self.limits)


class GuardedServer(web.Server):
    """The app's `web.Server` (as aiohttp built it), making `GuardedHandler`s and counting them."""

    def __init__(self, like: web.Server, limits: ConnectionLimits) -> None:
        super().__init__(like.request_handler, request_factory=like.request_factory,
                         handler_cancellation=like.handler_cancellation, **like._kwargs)
        self.limits = limits
        self.open = 0

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedHandler(RequestHandler):
    __slots__ = ("_awaiting_head", "_body", "_body_timer", "_guard", "_head", "_head_timer")

    def __init__(self, server: GuardedServer, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._guard = server
        self._awaiting_head = False    # a request's head has begun and is not complete yet
        self._head = b""               # the start of the latest head (which API it is for)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None   # a body still arriving after its head
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        guard = self._guard
        guard.open += 1
        if guard.open > guard.limits.max_connections:
            log.warning("refused a connection from %s: %d open, the cap is %d", self._peer(),
                        guard.open - 1, guard.limits.max_connections)
            self._answer_and_close(TooManyConnections(
                f"the gateway has {guard.limits.max_connections} connections open, its cap; "
                "retry in a moment", retry_after=1), "openai")
            return
        self._begin_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._manager is not None:  # the first call only
            self._guard.open -= 1
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_head:
            if self._request_in_progress or self._messages or not data:
                super().data_received(data)  # a body, or pipelined requests already parsed
                body = self._body
                if body is not None and body.is_eof():
                    self._end_body()
                return
            # A new request on a kept-alive connection: its deadline is armed only if its
            # head does not come whole in this read (nearly every head does).
            self._head = data[:64]
            super().data_received(data)
            if self._messages:
                self._head_done()
            elif not (self._force_close or self._close):
                self._begin_head()
            return
        if len(self._head) < 64:
            self._head += data[:64]
        super().data_received(data)
        if self._messages:
            self._head_done()

    def _head_done(self) -> None:
        """The head is in: its deadline is over; a body's begins if one is still to come."""
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        payload = self._messages[-1][1]
        if not payload.is_eof() and self._body_timer is None:
            self._body = payload
            self._body_timer = self._loop.call_later(
                self._guard.limits.body_timeout_s, self._body_late)

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The parser's refusals in the API's JSON, logged in one line; anything else (a 500)
        as aiohttp does it, traceback included: that is a bug of ours."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        error = _parser_error(exc, self.max_field_size)
        api = self._api()
        log.warning("refused a request from %s: %s (%d)", self._peer(), error.message,
                    error.status_code)
        response = render(error, api)
        response.force_close()
        return response

    # -- the timers ------------------------------------------------------------------------

    def _begin_head(self) -> None:
        self._awaiting_head = True
        self._head_timer = self._loop.call_later(self._guard.limits.header_timeout_s,
                                                 self._head_late)

    def _end_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body = self._body_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport is None:
            return
        limit = self._guard.limits.header_timeout_s
        log.info("closed a connection from %s: no complete request head within %g s",
                 self._peer(), limit)
        self._answer_and_close(RequestTimeout(
            f"the request head did not arrive within {limit:g} s"), self._api())

    def _body_late(self) -> None:
        payload, self._body, self._body_timer = self._body, None, None
        if payload is None or payload.is_eof() or self.transport is None:
            return
        limit = self._guard.limits.body_timeout_s
        log.info("a request body from %s did not arrive within %g s", self._peer(), limit)
        if self._request_in_progress:  # its handler answers 408 (read_json), then we close
            payload.set_exception(TimeoutError(f"the request body did not arrive within "
                                               f"{limit:g} s"))
            self.close()
        else:
            self.force_close()

    def _cancel_timers(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = None
        self._end_body()

    # -- answering outside a request -------------------------------------------------------

    def _answer_and_close(self, error: TaskrouteError, api: Api) -> None:
        """An error response written straight to the socket (no request to answer through),
        then the connection closed."""
        transport = self.transport
        if transport is not None:
            body = msgspec.json.encode(error_body(error, api))
            status = status_of(error)
            headers = "".join(f"{k}: {v}\r\n" for k, v in error_headers(error).items())
            transport.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{headers}Connection: close\r\n\r\n".encode() + body)
        self._cancel_timers()
        self.force_close()

    def _api(self) -> Api:
        """Which API the request arriving belongs to, from its request line."""
        line = self._head.split(b"\r\n", 1)[0]
        return "anthropic" if b" /v1/messages" in line else "openai"

    def _peer(self) -> str:
        transport = self.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else "a client"


_REASONS = {408: "Request Timeout", 503: "Service Unavailable"}


def _parser_error(exc: BaseException | None, limit: int) -> TaskrouteError:
    """What the parser refused, in words of our own: its message quotes the client's bytes,
    which may hold a key, and so stays out of the answer and the log."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return HeadersTooLarge(f"a header line (or the request line) is longer than the "
                               f"gateway's limit of {limit} bytes")
    for kind, what in _PARSER_ERRORS:
        if isinstance(exc, kind):
            return InvalidRequest(f"malformed HTTP request: {what}")
    return InvalidRequest("malformed HTTP request")


_PARSER_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.BadHttpMethod, "an unknown method"),
    (http_exceptions.BadStatusLine, "a malformed request line"),
    (http_exceptions.InvalidHeader, "a malformed header"),
    (http_exceptions.InvalidURLError, "a malformed URL"),
    (http_exceptions.PayloadEncodingError, "a malformed body encoding"),
)
