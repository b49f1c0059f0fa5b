"""The route as a stream's first event, before the model's first token, for a client that asks.

Asked with the `X-Taskroute-Route-Event: 1` header (or `metadata.route_event: true` in the
body), a streamed answer starts the moment the request is routed, before the model is called:
the route headers, then one event naming the route and its label, in each API's idiom:

- chat completions: a `chat.completion.chunk` with empty `choices` and a `taskroute` object
  (unnamed, as the usage chunk is: the `openai` SDK parses it as a chunk whatever its version;
  1.x releases turn a *named* event into a chunk without `choices`);
- Messages: `event: taskroute.route` right after `message_start` (the `anthropic` SDK's stream
  helper refuses any event before `message_start` and skips unknown ones after it);
- Responses: `event: taskroute.route` after `response.created` and `response.in_progress`
  (likewise for `openai`'s `responses.stream()`), with a `sequence_number`.

Not asked, nothing changes: strict parsers never see it. Asked, the response is committed at
once, so a failure before the first token arrives as the API's error event, not as a status.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from taskroute.decision import Decision
from taskroute.gateway.context import yes

HEADER = "X-Taskroute-Route-Event"
METADATA_KEY = "route_event"
EVENT = "taskroute.route"


def wanted(headers: Mapping[str, str], metadata: Mapping[str, Any] | None) -> bool:
    """Did the client ask for the route event (the header, or `metadata.route_event`)?"""
    if yes(headers.get(HEADER)):
        return True
    value = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    return value is True or (isinstance(value, str) and yes(value))


def route(decision: Decision, request_id: str) -> dict[str, Any]:
    """The route, as the event carries it."""
    return {
        "type": EVENT, "request_id": request_id, "label": decision.label,
        "task": decision.task, "task_source": decision.task_source, "tier": decision.tier,
        "model": decision.model, "chain": list(decision.chain), "routed": decision.routed,
        "estimated_cost_usd": decision.estimated_cost_usd,
    }


def openai_chunk(decision: Decision, request_id: str, chunk_id: str) -> bytes:
    """Chat completions: a chunk with no choices, carrying the route in `taskroute`."""
    return b"data: " + msgspec.json.encode({
        "id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
        "model": decision.model, "choices": [], "taskroute": route(decision, request_id),
    }) + b"\n\n"


def named_event(decision: Decision, request_id: str, **fields: Any) -> bytes:
    """Messages and Responses: `event: taskroute.route` (Responses adds `sequence_number`)."""
    payload = msgspec.json.encode({**route(decision, request_id), **fields})
    return b"event: " + EVENT.encode() + b"\ndata: " + payload + b"\n\n"
