"""`POST /v1/embeddings`, in OpenAI's shapes: passed to the embedding model the policy names
(`embeddings:`; `model` is one of them, an alias, or `auto` for the first), never routed, but
logged, priced (`X-Taskroute-Cost-USD`) and traced like every request."""

from __future__ import annotations

import msgspec
from aiohttp import web

from taskroute.exceptions import InvalidRequest, TaskrouteError
from taskroute.gateway import acknowledge
from taskroute.gateway.context import GATEWAY, read_json, record_headers, request_context


async def embeddings(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    body = await read_json(request, gateway.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    context = request_context(request, "embeddings")
    async with gateway.routers.lease() as router:
        try:
            answer, record = await router.embed(body, context=context)
        except TaskrouteError as exc:
            if exc.record is not None:
                gateway.metrics.observe(exc.record, "embeddings")
            raise
    written = acknowledge.log_written(router)
    gateway.metrics.observe(record, "embeddings")
    return await acknowledge.reply(request, msgspec.json.encode(answer), record_headers(record),
                                   written)
