"""What every handler shares: the router, the log, metrics, auth; and the steps common to both
APIs — reading a JSON body, the route headers, the explain object, logging one request."""

from __future__ import annotations

import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
from aiohttp import web

from taskroute.decision import Decision
from taskroute.exceptions import InvalidRequest, TaskrouteError, UpstreamError
from taskroute.gateway.auth import Authenticator, RateLimiter
from taskroute.gateway.errors import RequestTooLarge, summarise_attempts
from taskroute.gateway.metrics import GatewayMetrics
from taskroute.gateway.settings import GatewaySettings
from taskroute.records import RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store.base import LogEntry, Store

_decoder = msgspec.json.Decoder()
_random = random.Random()


@dataclass(slots=True)
class Gateway:
    router: Router
    settings: GatewaySettings
    metrics: GatewayMetrics
    auth: Authenticator
    limiter: RateLimiter
    # The log as create_app was handed it (the router writes to it through wrappers); the
    # quality endpoints read it when it is a `LogReader`.
    store: Store | None = None
    ready: bool = False
    in_flight: int = 0
    started_at: float = field(default_factory=time.time)


GATEWAY: web.AppKey[Gateway] = web.AppKey("taskroute_gateway", Gateway)
# The fingerprint of the key the current request came with (set by the auth middleware).
KEY_ID: ContextVar[str | None] = ContextVar("taskroute_key_id", default=None)


class KeyStampedStore:
    """Wraps the router's store: each gateway request's entry gets its key's fingerprint (the
    call path that writes the entry knows nothing of HTTP)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def add(self, entry: LogEntry) -> None:
        key_id = KEY_ID.get()
        if key_id is not None and entry.api_key_id is None:
            entry = replace(entry, api_key_id=key_id)
        self.inner.add(entry)

    def add_shadow(self, request_id: str, decision: Decision) -> None:
        self.inner.add_shadow(request_id, decision)

    async def flush(self) -> None:
        await self.inner.flush()

    async def aclose(self) -> None:
        await self.inner.aclose()


def new_request_id() -> str:
    """A unique id for the log and the headers (random, not a secret: uuid4's os.urandom call
    is measurably slower on the hot path)."""
    return f"req-{_random.getrandbits(96):024x}"


async def read_json(request: web.Request, limit: int) -> Any:
    """The body as JSON, refusing anything over `limit` bytes or not strictly JSON."""
    length = request.content_length
    if length is not None and length > limit:
        raise RequestTooLarge(f"the request body is {length:,} bytes; the limit is {limit:,}")
    body = await request.read()
    if len(body) > limit:
        raise RequestTooLarge(f"the request body is over the limit of {limit:,} bytes")
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def header_task(request: web.Request) -> str | None:
    return request.headers.get("X-Taskroute-Task") or None


def wants_explain(request: web.Request) -> bool:
    return request.headers.get("X-Taskroute-Explain", "").strip().lower() in ("1", "true", "yes")


def decision_headers(decision: Decision, model: str, request_id: str) -> dict[str, str]:
    """The route, known before the answer: what a stream can send ahead of its first token."""
    return {
        "X-Taskroute-Request-Id": request_id,
        "X-Taskroute-Task": decision.task,
        "X-Taskroute-Tier": decision.tier,
        "X-Taskroute-Model": model,
        "X-Taskroute-Escalated": "true" if model != decision.model else "false",
        "X-Taskroute-Estimated-Cost-USD": f"{decision.estimated_cost_usd:.8f}",
    }


def record_headers(record: RouteRecord) -> dict[str, str]:
    """The route a finished request took, with what it actually cost."""
    decision = record.decision
    headers = decision_headers(decision, record.answered_by or decision.model, record.request_id)
    headers["X-Taskroute-Escalated"] = "true" if record.escalated else "false"
    headers["X-Taskroute-Cost-USD"] = f"{record.total_cost_usd:.8f}"
    return headers


def explain(record: RouteRecord) -> dict[str, Any]:
    """The `taskroute` object added to a body when the caller sent `X-Taskroute-Explain: 1`."""
    decision = record.decision
    return {
        "request_id": record.request_id,
        "task": decision.task,
        "task_source": decision.task_source,
        "tier": decision.tier,
        "model": decision.model,
        "answered_by": record.answered_by,
        "chain": list(decision.chain),
        "routed": decision.routed,
        "escalated": record.escalated,
        "cost_usd": record.total_cost_usd,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "reasons": list(decision.reasons),
        "attempts": summarise_attempts(record.attempts),
    }


def failure_record(
    gateway: Gateway, exc: TaskrouteError, chat: ChatRequest, task: str | None,
    request_id: str, started_at: float,
) -> RouteRecord | None:
    """The route of a request the call path gave up on, for the metrics (the call path has
    logged it already). None when it never got as far as a decision (a caller's mistake)."""
    if not isinstance(exc, UpstreamError):
        return None
    try:
        decision = gateway.router.decide(chat, task=task)
    except TaskrouteError:
        return None
    return RouteRecord(
        request_id=request_id, decision=decision, attempts=list(getattr(exc, "attempts", ())),
        answered_by=None, status="error", error=f"{type(exc).__name__}: {exc}",
        latency_s=time.time() - started_at, started_at=started_at,
    )
