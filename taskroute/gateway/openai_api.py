"""`POST /v1/chat/completions`, in OpenAI's shapes exactly: a routed answer, streamed or not.

`model` picks the routing: `auto` or `taskroute` routes by the policy, `taskroute/<class>` names
the task class, a model id from the policy bypasses routing (still logged, still resilient). The
answer's `model` is the model that actually answered.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from taskroute.exceptions import TaskrouteError
from taskroute.gateway import streaming
from taskroute.gateway.context import (
    GATEWAY,
    explain,
    failure_record,
    header_task,
    new_request_id,
    read_json,
    record_headers,
    wants_explain,
)
from taskroute.request import ChatRequest

_JSON = "application/json"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    chat = ChatRequest.from_dict(await read_json(request, gateway.settings.max_body_bytes))
    task = header_task(request)
    request_id = new_request_id()
    if chat.stream:
        return await streaming.stream_openai(request, gateway, chat, task, request_id)
    started_at = time.time()
    try:
        result = await gateway.router.complete(chat, task=task, request_id=request_id,
                                               api="openai")
    except TaskrouteError as exc:
        record = failure_record(gateway, exc, chat, task, request_id, started_at)
        if record is not None:
            gateway.metrics.observe(record, "openai")
        raise
    response, record = result.response, result.record
    if record.answered_by and response.model != record.answered_by:
        response = msgspec.structs.replace(response, model=record.answered_by)
    if wants_explain(request):
        body: Any = response.to_dict()
        body["taskroute"] = explain(record)
    else:
        body = response
    gateway.metrics.observe(record, "openai")
    return web.Response(body=msgspec.json.encode(body), content_type=_JSON,
                        headers=record_headers(record))
