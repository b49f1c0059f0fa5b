"""`POST /v1/chat/completions`, in OpenAI's shapes exactly: a routed answer, streamed or not.

`model` picks the routing: `auto` or `taskroute` routes by the policy, `taskroute/<class>` names
the task class, a model id from the policy bypasses routing (still logged, still resilient). The
answer's `model` is the model that actually answered.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from taskroute.gateway import acknowledge, shared_step, streaming
from taskroute.gateway.context import (
    GATEWAY,
    complete,
    explain,
    prepare,
    read_json,
    record_headers,
    wants_explain,
)
from taskroute.request import ChatRequest


async def chat_completions(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    chat, context = prepare(request, ChatRequest.from_dict(
        await read_json(request, gateway.settings.max_body_bytes)), "openai")
    async with gateway.routers.lease() as router:  # held to the end, streams included
        context = await shared_step.fetch(request, gateway, router, chat, context)
        if chat.stream:
            return await streaming.stream_openai(request, gateway, router, chat, context)
        result = await complete(gateway, router, chat, context)
    written = acknowledge.log_written(router)  # the commit runs while the answer is built
    response, record = result.response, result.record
    if record.answered_by and response.model != record.answered_by:
        response = msgspec.structs.replace(response, model=record.answered_by)
    if wants_explain(request):
        body: Any = response.to_dict()
        body["taskroute"] = explain(record)
    else:
        body = response
    gateway.metrics.observe(record, "openai")
    return await acknowledge.reply(request, msgspec.json.encode(body),
                                   record_headers(record), written)
