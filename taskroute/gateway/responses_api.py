"""`POST /v1/responses`, OpenAI's Responses API: translated to a chat request and routed exactly
like `/v1/chat/completions` (the same `model` rules, the same chain, gates and log), answered
as a `response` object or its semantic stream events.

`previous_response_id` continues a conversation the gateway stored: a response is stored only
when its request says `store: true` *and* the policy logs content (`log content: true`), in the
log's own database, readable only with the key that made it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import msgspec
from aiohttp import web

from taskroute.calling.streaming import RouteStream
from taskroute.exceptions import InvalidRequest
from taskroute.experiment import Serving
from taskroute.gateway import acknowledge, route_event, streaming
from taskroute.gateway import responses_format as fmt
from taskroute.gateway.context import (
    GATEWAY,
    Gateway,
    complete,
    explain,
    key_id,
    prepare,
    read_json,
    record_headers,
    wants_explain,
)
from taskroute.gateway.responses_stream import ResponseEvents
from taskroute.records import Api, RequestContext, RouteRecord
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, Choice, ResponseMessage
from taskroute.store.base import ResponseStore, StoredResponse

API: Api = "responses"


async def responses(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    body = fmt.check_body(await read_json(request, gateway.settings.max_body_bytes))
    async with gateway.routers.lease() as router:  # held to the end, streams included
        store = _response_store(router, body)
        body = {**body, "store": store is not None}  # the answer says whether it was kept
        history = await _history(router, body, key_id(request))
        chat, context = prepare(request, fmt.to_chat(body, history), API)
        response_id = fmt.new_response_id()
        if chat.stream:
            return await _stream(request, gateway, router, chat, context, body, response_id,
                                 store)
        result = await complete(gateway, router, chat, context)
        record = result.record
        answer = result.response
        model = record.answered_by or answer.model
        written: Awaitable[None] = acknowledge.log_written(router)
        if store is not None:
            store.add_response(_stored(response_id, record, chat, answer, body, key_id(request)))
            written = store.flush()  # committed before the answer is acknowledged
    obj = fmt.response_object(body, response_id, model, status="completed",
                              output=fmt.output_items(answer), usage=fmt.usage_of(answer.usage),
                              finish_reason=answer.finish_reason)
    if wants_explain(request):
        obj["taskroute"] = explain(record)
    gateway.metrics.observe(record, API)
    return await acknowledge.reply(request, msgspec.json.encode(obj), record_headers(record),
                                   written)


async def _stream(
    request: web.Request, gateway: Gateway, router: Serving, chat: ChatRequest,
    context: RequestContext, body: Mapping[str, Any], response_id: str,
    store: ResponseStore | None,
) -> web.StreamResponse:
    state: dict[str, Any] = {}
    with_explain = wants_explain(request)
    caller_key = key_id(request)

    def done(obj: dict[str, Any], text: str, calls: list[dict[str, Any]]) -> None:
        record: RouteRecord = state["stream"].record
        if with_explain:
            obj["taskroute"] = explain(record)
        if store is not None:
            answer = ChatResponse(model=state["model"], choices=[Choice(message=ResponseMessage(
                content=text or None, tool_calls=calls or None))])
            store.add_response(_stored(response_id, record, chat, answer, body, caller_key))

    events = ResponseEvents(body, response_id, lambda: str(state["model"]), done)
    written = None
    if store is not None:
        async def committed() -> None:  # started when awaited: after `done` queued it
            await store.flush()

        written = committed
    def lead(stream: RouteStream) -> list[bytes]:
        # after `response.created`: the SDK's `responses.stream()` takes nothing before it
        return [*events.opening(), route_event.named_event(
            stream.decision, str(context.request_id),
            sequence_number=events.next_sequence_number())]

    with_route = route_event.wanted(request.headers, chat.metadata)
    return await streaming.run_stream(request, gateway, router, chat, context, events, state,
                                      written=written, lead=lead if with_route else None)


def _response_store(router: Serving, body: Mapping[str, Any]) -> ResponseStore | None:
    """Where this response is kept: only with `store: true`, a policy that logs content and a
    log that keeps responses."""
    if not body.get("store"):
        return None
    store = router.store
    if not router.policy.log_content or not isinstance(store, ResponseStore):
        return None  # answered all the same, as OpenAI does with store off; not kept
    return store


async def _history(
    router: Serving, body: Mapping[str, Any], caller_key: str | None
) -> list[dict[str, Any]]:
    """The stored conversation `previous_response_id` names, or a clear error saying why there
    is none."""
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    param = "previous_response_id"
    if not isinstance(previous, str) or not previous:
        raise InvalidRequest("'previous_response_id' must be a response id", param=param)
    if not router.policy.log_content:
        raise InvalidRequest(
            f"previous response {previous!r} was not stored: this gateway's policy does not "
            "log content ('log content: false'), so no response is kept; send the whole "
            "conversation in 'input' instead", param=param)
    store = router.store
    if not isinstance(store, ResponseStore):
        raise InvalidRequest(
            f"previous response {previous!r} was not stored: this gateway's request log "
            "does not keep responses; send the whole conversation in 'input' instead",
            param=param)
    stored = await store.stored_response(previous)
    if stored is None or stored.api_key_id != caller_key:
        raise InvalidRequest(
            f"previous response {previous!r} not found: only a response made with "
            "'store: true' is kept, and only for the key that made it", param=param)
    messages: list[dict[str, Any]] = msgspec.json.decode(stored.conversation)
    return messages


def _stored(
    response_id: str, record: RouteRecord, chat: ChatRequest, answer: ChatResponse,
    body: Mapping[str, Any], caller_key: str | None,
) -> StoredResponse:
    turns = fmt.turn_history(chat, answer, instructions=body.get("instructions") is not None)
    return StoredResponse(response_id, record.request_id, msgspec.json.encode(turns),
                          caller_key)
