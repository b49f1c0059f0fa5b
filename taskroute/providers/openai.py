"""OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp, Groq, Together, ...).

The body is the caller's request as sent (unknown fields pass through) with `model` replaced by
the upstream name. Streams ask for `stream_options.include_usage`, so the last chunk carries
usage. Auth is `Authorization: Bearer <key>` when the policy names a key variable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from taskroute.exceptions import MalformedResponse, UpstreamConnectionError, UpstreamStatus
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.errors import Clock, status_error, upstream_errors
from taskroute.providers.http import HttpClient
from taskroute.providers.sse import events
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk

_decode_chunk = msgspec.json.Decoder(dict[str, Any])


class OpenAIProvider:
    """A `Provider` for any server speaking OpenAI's `POST /chat/completions`."""

    def __init__(self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None) -> None:
        self.name = spec.name
        self._http = HttpClient(spec, env=env)
        # api.openai.com rejects max_tokens for reasoning models; others may not know the new name
        self._max_tokens_field = (
            "max_completion_tokens" if urlsplit(spec.base_url).hostname == "api.openai.com"
            else "max_tokens"
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the Provider protocol ------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        headers, body = self._headers(), self._body(request, model, stream=False)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            response = await self._http.post("/chat/completions", body, headers, clock)
            try:
                raw = await self._http.read(response, clock)
            finally:
                response.release()
            if not 200 <= response.status < 300:
                raise self._status_error(response, raw, model)
            return msgspec.json.decode(raw, type=ChatResponse, strict=False)

    async def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        headers, body = self._headers(), self._body(request, model, stream=True)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            response = await self._http.post("/chat/completions", body, headers, clock)
            try:
                if not 200 <= response.status < 300:
                    raise self._status_error(response, await self._http.read(response, clock),
                                             model)
                _expect_event_stream(response)
                async for chunk in _chunks(response, clock):
                    yield chunk
            finally:
                response.close()  # a consumer that stops early hangs up: the upstream stops too

    # -- the wire format ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **self._http.spec.headers}
        key = self._http.key()
        if key is not None:
            headers["Authorization"] = f"Bearer {key.reveal()}"
        return headers

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body = request.to_dict()
        body["model"] = model
        if "max_tokens" in body and self._max_tokens_field != "max_tokens":
            body[self._max_tokens_field] = body.pop("max_tokens")
        if not body.get("store"):
            body.pop("metadata", None)  # taskroute's routing metadata; OpenAI wants it with store
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    def _status_error(
        self, response: aiohttp.ClientResponse, raw: bytes, model: str
    ) -> UpstreamStatus:
        return status_error(response.status, response.headers, raw, provider=self.name,
                            model=model, message_of=error_message, redact=self._http.redact)


def error_message(body: Any) -> str | None:
    """OpenAI's `{"error": {"message": ...}}` (some servers send a bare string or `detail`)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("detail"):
            return str(body["detail"])
    return None


def _expect_event_stream(response: aiohttp.ClientResponse) -> None:
    if response.content_type != "text/event-stream":
        raise MalformedResponse(
            f"expected a text/event-stream answer, got {response.content_type or 'no type'}")


async def _chunks(response: aiohttp.ClientResponse, clock: Clock) -> AsyncIterator[StreamChunk]:
    finished = False
    async for event in events(response, clock):
        if event.data.strip() == "[DONE]":
            return
        data = _decode_chunk.decode(event.data)
        if "error" in data:
            raise UpstreamStatus(f"error in the stream: {error_message(data)}", status=500,
                                 body=data)
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise MalformedResponse("a stream chunk without a 'choices' list")
        finished = finished or any(isinstance(c, dict) and c.get("finish_reason")
                                   for c in choices)
        yield StreamChunk(data)
    if not finished:
        raise UpstreamConnectionError("the stream ended before the answer finished")
