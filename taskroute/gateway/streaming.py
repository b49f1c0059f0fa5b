"""Streamed answers as server-sent events. The route is known once the stream has started (the
first chunk is ready), so it goes out in the response headers ahead of the first token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import msgspec
from aiohttp import web

from taskroute.calling.streaming import RouteStream
from taskroute.exceptions import TaskrouteError
from taskroute.experiment import Serving
from taskroute.gateway import route_event
from taskroute.gateway.acknowledge import log_written
from taskroute.gateway.context import (
    Gateway,
    decision_headers,
    explain,
    wants_explain,
)
from taskroute.gateway.errors import error_event
from taskroute.records import Api, RequestContext, RouteRecord
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk, complete_chunk

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}
_DONE = b"data: [DONE]\n\n"


# Turns the OpenAI chunks into the wire's SSE frames; called once more with None at the end.
Framer = Callable[[StreamChunk | None], Iterable[bytes]]
# The frames a stream opens with when its client asked for the route event (route_event.py):
# called once, as soon as the request is routed.
Lead = Callable[[RouteStream], Iterable[bytes]]


async def stream_openai(
    request: web.Request, gateway: Gateway, router: Serving, chat: ChatRequest,
    context: RequestContext,
) -> web.StreamResponse:
    request_id = str(context.request_id)
    include_usage = bool((chat.extra.get("stream_options") or {}).get("include_usage"))
    with_explain = wants_explain(request)
    state: dict[str, Any] = {}

    def frames(chunk: StreamChunk | None) -> Iterable[bytes]:
        if chunk is None:
            if with_explain and "stream" in state:
                record: RouteRecord = state["stream"].record
                yield b"data: " + msgspec.json.encode({
                    "id": state.get("id", request_id), "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": state["model"], "choices": [],
                    "taskroute": explain(record)}) + b"\n\n"
            yield _DONE
            return
        data = chunk.data
        if "usage" in data:
            # OpenAI sends usage in the last chunk only (null in the others when asked for)
            if not data.get("choices"):
                if not include_usage:
                    return
            else:
                if data["usage"] is None:
                    del data["usage"]  # in place: a null tells the record nothing
                else:  # a copy: the stream's chunks keep their usage for the record
                    data = {k: v for k, v in data.items() if k != "usage"}
                if include_usage:
                    data["usage"] = None
        data["model"] = state["model"]
        complete_chunk(data, fallback_id=state.setdefault("id", data.get("id") or request_id))
        yield b"data: " + msgspec.json.encode(data) + b"\n\n"

    def lead(stream: RouteStream) -> Iterable[bytes]:
        return [route_event.openai_chunk(stream.decision, request_id,
                                         state.setdefault("id", request_id))]

    return await run_stream(request, gateway, router, chat, context, frames, state,
                            lead=lead if route_event.wanted(request.headers, chat.metadata)
                            else None)


class _EventStreamResponse(web.StreamResponse):
    """Holds its headers back until the first frame, so both go out in one packet (the route
    headers still arrive ahead of the first token). `web.Response` does the same."""

    _send_headers_immediately = False


async def run_stream(
    request: web.Request, gateway: Gateway, router: Serving, chat: ChatRequest,
    context: RequestContext, frames: Framer, state: dict[str, Any],
    written: Callable[[], Awaitable[None]] | None = None, lead: Lead | None = None,
) -> web.StreamResponse:
    """Start the routed stream, send the route headers, relay the frames. (The call path logs
    the request when the stream ends, however it ends; its end goes out once that is written,
    or once `written()` is done, called when the stream has ended and awaited after the last
    frames are framed.) With `lead` (the client asked for the route event) the headers, naming
    the route's first pick, and the lead's frames go out as soon as the request is routed,
    before the model is called; a failure before its first token then ends the stream with
    the API's error event, as one after it does."""
    api = context.api
    stream = router.stream(chat, context=context)
    written = written or partial(log_written, router)
    if lead is None:
        try:
            await stream.start()
        except TaskrouteError:
            gateway.metrics.observe(stream.record, api)
            raise
    model = stream.model or stream.decision.model
    state["stream"], state["model"] = stream, model
    headers = decision_headers(stream.decision, model, str(context.request_id),
                               stream.record.stood_in_for)
    headers.update(_SSE_HEADERS)
    response = _EventStreamResponse(headers=headers)
    finished = False
    try:
        await response.prepare(request)
        if lead is None:
            await _relay(stream, response, frames, api, written)
        else:
            await _lead_then_relay(stream, response, frames, api, written, lead, state)
        finished = True
    except ConnectionResetError:
        pass  # the caller hung up; closing the stream below records it
    finally:
        if not finished:
            await stream.aclose()
        gateway.metrics.observe(stream.record, api)
    return response


async def _lead_then_relay(
    stream: RouteStream, response: web.StreamResponse, frames: Framer, api: Api,
    written: Callable[[], Awaitable[None]], lead: Lead, state: dict[str, Any],
) -> None:
    await response.write(b"".join(lead(stream)))
    stream.answer_begun()
    try:
        await stream.start()
    except TaskrouteError as exc:
        await _close(response, frames, api, written, [], exc)
        return
    state["model"] = stream.model or stream.decision.model  # the deployment answering
    await _relay(stream, response, frames, api, written)


async def _relay(
    stream: RouteStream, response: web.StreamResponse, frames: Framer, api: Api,
    written: Callable[[], Awaitable[None]],
) -> None:
    """Relay the stream as frames; those ready together go out in one write. The last frames
    (`[DONE]` or `message_stop`, or the error event) and the end of the body wait for the
    route's log row (gateway/acknowledge.py): the stream's end records the route, the commit
    starts at once, and the frames ahead of the last go out while it runs."""
    pending: list[StreamChunk] = []  # chunks at hand together, framed and written together
    failure: TaskrouteError | None = None
    try:
        async for chunk in stream:
            pending.append(chunk)
            if not stream.ready():
                await _write(response, frames, pending)
    except TaskrouteError as exc:  # failed after the first byte: too late for a status
        failure = exc
    await _close(response, frames, api, written, pending, failure)


async def _close(
    response: web.StreamResponse, frames: Framer, api: Api,
    written: Callable[[], Awaitable[None]], pending: list[StreamChunk],
    failure: TaskrouteError | None,
) -> None:
    """The stream has ended (its route logged): the chunks still pending, then its last frames
    (or `failure`'s error event) and the end of the body once the log row is written."""
    commit = asyncio.ensure_future(written())  # the stream ended, its route logged: write it
    if not commit.done():
        await _write(response, frames, pending)  # framed and sent while the commit runs
    rest = b"".join(frame for chunk in pending for frame in frames(chunk))
    last = error_event(failure, api) if failure is not None else b"".join(frames(None))
    await commit
    await response.write_eof(rest + last)  # durable already: the rest and the end in one write


async def _write(response: web.StreamResponse, frames: Framer, chunks: list[StreamChunk]) -> None:
    data = b"".join(frame for chunk in chunks for frame in frames(chunk))
    chunks.clear()
    if data:
        await response.write(data)
