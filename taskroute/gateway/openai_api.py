"""`POST /v1/chat/completions`, in OpenAI's shapes exactly: a routed answer, streamed or not.

`model` picks the routing: `auto` or `taskroute` routes by the policy, `taskroute/<class>` names
the task class, a model id from the policy bypasses routing (still logged, still resilient). The
answer's `model` is the model that actually answered.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from taskroute.exceptions import TaskrouteError
from taskroute.gateway import acknowledge, streaming
from taskroute.gateway.context import (
    GATEWAY,
    explain,
    read_json,
    record_headers,
    refuse_empty_turns,
    request_context,
    wants_explain,
)
from taskroute.providers.vendor_fields import forwarded_headers
from taskroute.request import ChatRequest


async def chat_completions(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    chat = refuse_empty_turns(ChatRequest.from_dict(
        await read_json(request, gateway.settings.max_body_bytes)), "openai")
    chat = chat.with_upstream_headers(forwarded_headers(request.headers))
    context = request_context(request, "openai", chat)
    async with gateway.routers.lease() as router:  # held to the end, streams included
        if chat.stream:
            return await streaming.stream_openai(request, gateway, router, chat, context)
        try:
            result = await router.complete(chat, context=context)
        except TaskrouteError as exc:
            if exc.record is not None:
                gateway.metrics.observe(exc.record, "openai")
            raise
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
