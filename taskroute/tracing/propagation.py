"""W3C trace context (`traceparent`, `tracestate`): read from a client, handed to upstreams.

The trace headers of the call in flight travel in a context variable that `HttpClient.post`
reads, so every adapter sends them without each building them: `outgoing(span)` sets them for
one call (a no-op, allocating nothing, when the call has no span)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskroute.decision import Decision
    from taskroute.records import AttemptRole, GateVerdict
    from taskroute.request import ChatRequest
    from taskroute.tracing.base import AttemptSpan

TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
# version 00: 32 hex trace id, 16 hex parent id, 2 hex flags (all-zero ids are invalid)
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
_MAX_TRACESTATE = 512  # the W3C limit a propagator must at least pass on

OUTGOING: ContextVar[Mapping[str, str] | None] = ContextVar("taskroute_trace", default=None)
_NOTHING = contextlib.nullcontext()


def client_trace(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The client's (traceparent, tracestate); a malformed traceparent is ignored (a new trace
    starts, as the W3C spec says), and tracestate only counts beside a valid one."""
    parent = headers.get(TRACEPARENT)
    if not parent:
        return None, None
    parent = parent.strip().lower()
    if not _TRACEPARENT.match(parent):
        return None, None
    state = headers.get(TRACESTATE, "").strip()
    return parent, (state if state and len(state) <= _MAX_TRACESTATE else None)


def outgoing(span: AttemptSpan | None) -> contextlib.AbstractContextManager[object]:
    """Send `span`'s trace headers with the upstream call made inside the block."""
    return _NOTHING if span is None else _sending(span.headers())


@contextlib.contextmanager
def _sending(headers: Mapping[str, str]) -> Iterator[None]:
    token = OUTGOING.set(headers)
    try:
        yield
    finally:
        OUTGOING.reset(token)


class PassThrough:
    """Tracing off, a client's trace context given: each attempt hands it on unchanged (the
    upstream's spans join the client's trace), a judge's calls too; nothing is recorded."""

    __slots__ = ("_headers",)

    def __init__(self, traceparent: str, tracestate: str | None) -> None:
        self._headers = {TRACEPARENT: traceparent}
        if tracestate:
            self._headers[TRACESTATE] = tracestate

    def attempt(self, model: str, deployment: str, role: AttemptRole) -> PassThrough:
        return self

    def judge(self, request: ChatRequest, decision: Decision, gate: str) -> PassThrough:
        return self

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def judged(self, verdict: GateVerdict | None) -> None:
        pass

    def end(self, *args: object, **kwargs: object) -> None:
        pass
