"""`POST /v1/messages`: Anthropic's Messages API, routed like chat completions, so Anthropic SDK
users get routing too. The shapes are converted by `taskroute.providers.anthropic_inbound` and
`anthropic_stream` (the same code the Anthropic adapter uses the other way round)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from aiohttp import web

from taskroute.calling.streaming import RouteStream
from taskroute.exceptions import InvalidRequest
from taskroute.experiment import Serving
from taskroute.gateway import acknowledge, route_event, shared_step, streaming
from taskroute.gateway.context import (
    GATEWAY,
    complete,
    explain,
    prepare,
    read_json,
    record_headers,
    wants_explain,
)
from taskroute.providers.anthropic_inbound import from_messages_request, to_messages_response
from taskroute.providers.anthropic_stream import AnthropicEvents, sse_event
from taskroute.records import RequestContext
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk
from taskroute.signals import input_tokens


async def messages(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    body = await read_json(request, gateway.settings.max_body_bytes)
    chat, context = prepare(request, to_chat_request(body), "anthropic")
    async with gateway.routers.lease() as router:  # held to the end, streams included
        context = await shared_step.fetch(request, gateway, router, chat, context)
        if chat.stream:
            return await _stream(request, router, chat, context, route_event.wanted(
                request.headers, body.get("metadata")))
        result = await complete(gateway, router, chat, context)
    written = acknowledge.log_written(router)  # the commit runs while the answer is built
    record = result.record
    answer = to_messages_response(result.response)
    answer["model"] = record.answered_by or answer["model"]
    if wants_explain(request):
        answer["taskroute"] = explain(record)
    gateway.metrics.observe(record, "anthropic")
    return await acknowledge.reply(request, msgspec.json.encode(answer),
                                   record_headers(record), written)


async def count_tokens(request: web.Request) -> web.Response:
    """`POST /v1/messages/count_tokens`: the input tokens a Messages body would take (the
    estimate routing uses: system, turns and tools), in Anthropic's shape. Nothing is called
    and nothing routed, so nothing is logged."""
    gateway = request.app[GATEWAY]
    chat = to_chat_request(await read_json(request, gateway.settings.max_body_bytes),
                           counting=True)
    return web.json_response({"input_tokens": input_tokens(chat)})


def to_chat_request(body: Any, *, counting: bool = False) -> ChatRequest:
    """A Messages body, checked for the fields the API requires, as a `ChatRequest`
    (`counting`: a count_tokens body, which has no `max_tokens`)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    for name, kind, label in (("model", str, "a string"), ("max_tokens", int, "an integer"),
                              ("messages", list, "a list")):
        value = body.get(name)
        if value is None and counting and name == "max_tokens":
            continue
        if value is None:
            raise InvalidRequest(f"{name}: field required", param=name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidRequest(f"{name}: must be {label}", param=name)
    if not counting and body["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: must be at least 1", param="max_tokens")
    for i, turn in enumerate(body["messages"]):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}: a turn needs role 'user' or 'assistant'",
                                 param=f"messages.{i}")
        content = turn.get("content")
        if not isinstance(content, str) and not (
            isinstance(content, list) and all(isinstance(b, dict) for b in content)
        ):
            raise InvalidRequest(f"messages.{i}.content: a string or a list of blocks",
                                 param=f"messages.{i}.content")
    system, tools = body.get("system"), body.get("tools")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("system: a string or a list of text blocks", param="system")
    if tools is not None and not (isinstance(tools, list)
                                  and all(isinstance(t, dict) for t in tools)):
        raise InvalidRequest("tools: a list of tool objects", param="tools")
    try:
        return from_messages_request(body)
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise InvalidRequest(f"the request does not follow the Messages API: {exc}") from None


async def _stream(
    request: web.Request, router: Serving, chat: ChatRequest, context: RequestContext,
    with_route: bool,
) -> web.StreamResponse:
    request_id = str(context.request_id)
    state: dict[str, Any] = {}
    with_explain = wants_explain(request)

    def events_of() -> AnthropicEvents:
        events: AnthropicEvents | None = state.get("events")
        if events is None:
            events = state["events"] = AnthropicEvents(
                state["model"], "msg_" + request_id[4:],
                input_estimate=state["stream"].decision.signals.input_tokens)
        return events

    def frames(chunk: StreamChunk | None) -> Iterable[bytes]:
        events = events_of()
        pairs = events.feed(chunk.data) if chunk is not None else events.finish()
        for kind, data in pairs:
            if kind == "message_stop" and with_explain:
                data = {**data, "taskroute": explain(state["stream"].record)}
            yield sse_event(kind, data)

    def lead(stream: RouteStream) -> Iterable[bytes]:
        # `message_start` first: the SDK's stream helper takes nothing before it
        for kind, data in events_of().start():
            yield sse_event(kind, data)
        yield route_event.named_event(stream.decision, request_id)

    return await streaming.run_stream(
        request, request.app[GATEWAY], router, chat, context, frames, state,
        lead=lead if with_route else None)
