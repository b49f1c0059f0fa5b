"""What every handler shares: the router being served, the log, metrics, auth; and the steps
common to both APIs — reading a JSON body, the request's explicit context, the route headers,
the explain object."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from taskroute.calling import deadline
from taskroute.decision import Decision
from taskroute.exceptions import (
    InvalidRequest,
    RequestTimeout,
    RequestTooLarge,
    TaskrouteError,
)
from taskroute.experiment import Serving
from taskroute.gateway.auth import Authenticator, RateLimiter
from taskroute.gateway.errors import summarise_attempts
from taskroute.gateway.inputs import decode_json
from taskroute.gateway.metrics import GatewayMetrics
from taskroute.gateway.serving import Current
from taskroute.gateway.settings import GatewaySettings
from taskroute.providers.vendor_fields import forwarded_headers
from taskroute.records import Api, RequestContext, RouteRecord, RouteResult
from taskroute.request import ChatRequest
from taskroute.store.base import Store
from taskroute.tracing.propagation import client_trace

_random = random.Random()


@dataclass(slots=True)
class Gateway:
    routers: Current                    # the router served now; reload swaps it
    settings: GatewaySettings
    metrics: GatewayMetrics
    auth: Authenticator
    limiter: RateLimiter
    store: Store | None = None          # the log the router writes, which the app closes
    ready: bool = False
    in_flight: int = 0
    started_at: float = field(default_factory=time.time)


GATEWAY: web.AppKey[Gateway] = web.AppKey("taskroute_gateway", Gateway)
# The fingerprint of the key the request came with (set by the auth middleware on the request).
KEY_ID: web.RequestKey[str] = web.RequestKey("taskroute_key_id", str)
# Every request's id, given by the errors middleware first, so refusals carry one too.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("taskroute_request_id", str)
# The chat request once its body is read (a refusal logs what it asked for).
CHAT: web.RequestKey[ChatRequest] = web.RequestKey("taskroute_chat", ChatRequest)


def key_id(request: web.Request) -> str | None:
    return request.get(KEY_ID)


def request_context(
    request: web.Request, api: Api, chat: ChatRequest | None = None
) -> RequestContext:
    """The request's explicit context: its id, its API, the class its caller named, its key,
    its W3C trace context.
    (`chat` is kept on the request, for the log of a refusal.)"""
    if chat is not None:
        request[CHAT] = chat
    traceparent, tracestate = client_trace(request.headers)
    return RequestContext(request_id=request.get(REQUEST_ID) or new_request_id(), api=api,
                          task=header_task(request), key_id=request.get(KEY_ID),
                          deadline_s=caller_deadline(request, chat),
                          traceparent=traceparent, tracestate=tracestate)


def caller_deadline(request: web.Request, chat: ChatRequest | None) -> float | None:
    """The caller's deadline in seconds: `X-Taskroute-Deadline` or `metadata.deadline_s`, the
    shorter when both are given; a value that is not a positive number is a 400."""
    header = request.headers.get(deadline.HEADER)
    given = chat.meta(deadline.METADATA_KEY) if chat is not None else None
    return deadline.shortest(
        None if header is None else deadline.parse_seconds(header, deadline.HEADER),
        None if given is None else deadline.parse_seconds(given, "metadata.deadline_s"))


def new_request_id() -> str:
    """A unique id for the log and the headers (random, not a secret: uuid4's os.urandom call
    is measurably slower on the hot path)."""
    return f"req-{_random.getrandbits(96):024x}"


async def read_json(request: web.Request, limit: int) -> Any:
    """The body as JSON, refusing anything over `limit` bytes or not strictly JSON."""
    length = request.content_length
    if length is not None and length > limit:
        raise RequestTooLarge(f"the request body is {length:,} bytes; the limit is {limit:,}")
    try:
        body = await request.read()
    except TimeoutError as exc:  # the body deadline (gateway/connections.py)
        raise RequestTimeout(str(exc)) from None
    except RequestPayloadError:  # bad chunked framing, a body shorter than its length
        raise InvalidRequest("the request body could not be read: its framing is malformed"
                             ) from None
    if len(body) > limit:
        raise RequestTooLarge(f"the request body is over the limit of {limit:,} bytes")
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    return decode_json(body)


def prepare(
    request: web.Request, chat: ChatRequest, api: Api
) -> tuple[ChatRequest, RequestContext]:
    """What both APIs do with a parsed request before routing it: refuse empty user turns,
    carry the client's vendor headers (`anthropic-beta`) and build its explicit context."""
    chat = refuse_empty_turns(chat, api).with_upstream_headers(forwarded_headers(request.headers))
    return chat, request_context(request, api, chat)


async def complete(
    gateway: Gateway, router: Serving, chat: ChatRequest, context: RequestContext
) -> RouteResult:
    """`router.complete`; a failure's route is counted in the metrics before it is rendered."""
    try:
        return await router.complete(chat, context=context)
    except TaskrouteError as exc:
        if exc.record is not None:
            gateway.metrics.observe(exc.record, context.api)
        raise


def refuse_empty_turns(chat: ChatRequest, api: Api) -> ChatRequest:
    """A user turn with no content (null, empty or blank text) is refused, as the CLI refuses an
    empty prompt: there is nothing to route or answer."""
    for i, message in enumerate(chat.messages):
        content = message.content
        if message.role != "user" or (isinstance(content, list) and any(
                part.get("type") != "text" for part in content)):
            continue  # an image or a file is content
        if not message.text.strip():
            param = (f"messages.{i}.content" if api == "anthropic" else "input"
                     if api == "responses" else f"messages[{i}].content")
            what = "null" if content is None else "empty"
            raise InvalidRequest(f"{param}: a user message needs content; it is {what}",
                                 param=param)
    return chat


def header_task(request: web.Request) -> str | None:
    return request.headers.get("X-Taskroute-Task") or None


def yes(value: str | None) -> bool:
    """A switch header's (or metadata value's) "on": 1, true or yes."""
    return value is not None and value.strip().lower() in ("1", "true", "yes")


def wants_explain(request: web.Request) -> bool:
    return yes(request.headers.get("X-Taskroute-Explain"))


# Printable ASCII but `%`: a label made of these goes out as itself, any other character
# percent-encoded as UTF-8 (headers carry Latin-1 at best; `urllib.parse.unquote` reads it).
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def label_header(label: str) -> str:
    return quote(label, safe=_HEADER_SAFE)


def decision_headers(
    decision: Decision, model: str, request_id: str, stood_in_for: str | None = None,
) -> dict[str, str]:
    """The route, known before the answer: what a stream can send ahead of its first token.
    `model` is the deployment answering; on failover, `stood_in_for` the policy's model it
    answers for (`X-Taskroute-Stood-In-For`)."""
    headers = {
        "X-Taskroute-Request-Id": request_id,
        "X-Taskroute-Task": decision.task,
        "X-Taskroute-Tier": decision.tier,
        "X-Taskroute-Model": model,
        "X-Taskroute-Escalated": "true" if (stood_in_for or model) != decision.model else "false",
        "X-Taskroute-Estimated-Cost-USD": f"{decision.estimated_cost_usd:.8f}",
    }
    if stood_in_for is not None:
        headers["X-Taskroute-Stood-In-For"] = stood_in_for
    if decision.label is not None:
        headers["X-Taskroute-Label"] = label_header(decision.label)
    return headers


def record_headers(record: RouteRecord) -> dict[str, str]:
    """The route a finished request took, with what it actually cost."""
    decision = record.decision
    headers = decision_headers(decision, record.answered_by or decision.model, record.request_id,
                               record.stood_in_for)
    headers["X-Taskroute-Escalated"] = "true" if record.escalated else "false"
    headers["X-Taskroute-Cost-USD"] = f"{record.total_cost_usd:.8f}"
    tokens = record.tokens  # every attempt's, by kind (cached input is in input, and so on)
    for name, value in (("Input", tokens.input), ("Cached-Input", tokens.cached_input),
                        ("Cache-Write", tokens.cache_write), ("Output", tokens.output),
                        ("Reasoning", tokens.reasoning)):
        headers[f"X-Taskroute-{name}-Tokens"] = str(value)
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
        "stood_in_for": record.stood_in_for,
        "chain": list(decision.chain),
        "routed": decision.routed,
        "label": decision.label,
        "escalated": record.escalated,
        "cost_usd": record.total_cost_usd,
        "tokens": asdict(record.tokens),
        "estimated_cost_usd": decision.estimated_cost_usd,
        "reasons": list(decision.reasons),
        "attempts": summarise_attempts(record.attempts),
    }
