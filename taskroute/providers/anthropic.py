"""Anthropic's Messages API (`POST {base_url}/v1/messages`), behind the OpenAI-shaped Protocol.

Requests are converted by `anthropic_format`, streams by `anthropic_stream`. Auth is the
`x-api-key` header, with `anthropic-version: 2023-06-01`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from taskroute.exceptions import MalformedResponse, UpstreamConnectionError
from taskroute.policy.model import ProviderSpec
from taskroute.providers.anthropic_format import from_messages_response, to_messages_request
from taskroute.providers.anthropic_stream import OpenAIChunks
from taskroute.providers.base import Timeouts
from taskroute.providers.errors import Clock, upstream_errors
from taskroute.providers.http import HttpClient
from taskroute.providers.registry import no_options
from taskroute.providers.sse import events
from taskroute.providers.vendor_fields import headers_for
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk

API_VERSION = "2023-06-01"
_decode = msgspec.json.Decoder(dict[str, Any])


class AnthropicProvider:
    """A `Provider` for Anthropic's Messages API."""

    # A last assistant turn is a prefill the model continues (a stream's rescue uses it).
    assistant_prefill = True

    def __init__(
        self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None,
        default_max_tokens: int = 4096,
    ) -> None:
        self.name = spec.name
        self._http = HttpClient(spec, env=env)
        # Accept a base URL written with or without the /v1 suffix.
        self._path = "/messages" if self._http.base_url.endswith("/v1") else "/v1/messages"
        self._default_max_tokens = default_max_tokens

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        headers, body = self._headers(request), self._body(request, model, stream=False)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            response, raw = await self._http.exchange(self._path, body, headers, clock,
                                                      self._http.status_error(model, error_message))
            data = _decode.decode(raw)
            if data.get("type") == "error":
                raise MalformedResponse(f"an error body with status {response.status}")
            return from_messages_response(data)

    async def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        headers, body = self._headers(request), self._body(request, model, stream=True)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            response = await self._http.open_stream(self._path, body, headers, clock,
                                                    self._http.status_error(model, error_message))
            complete = False
            try:
                translator = OpenAIChunks(model)
                async for event in events(response, clock):
                    for chunk in translator.feed(event.event, _decode.decode(event.data)):
                        yield StreamChunk(chunk)
                    if translator.done:
                        complete = True
                        return
                raise UpstreamConnectionError("the stream ended before message_stop")
            finally:
                # read to its end: back to the pool; stopped early: hung up, the upstream stops
                self._http.end_stream(response, complete=complete)

    def _headers(self, request: ChatRequest) -> dict[str, str]:
        fixed = self._http.headers()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "anthropic-version": API_VERSION, **fixed}
        # the client's anthropic-beta, after the policy's own (vendor_fields)
        for name, value in headers_for("anthropic", request.upstream_headers, fixed).items():
            for same in [k for k in headers if k.lower() == name]:
                del headers[same]
            headers[name] = value
        key = self._http.key()
        if key is not None:
            headers["x-api-key"] = key.reveal()
        return headers

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body = to_messages_request(request, model, default_max_tokens=self._default_max_tokens)
        if stream:
            body["stream"] = True
        return body


def build(spec: ProviderSpec, env: Mapping[str, str] | None) -> AnthropicProvider:
    """The `anthropic` provider kind, registered in `taskroute.plugins.PROVIDERS`."""
    no_options(spec)
    return AnthropicProvider(spec, env=env)


def error_message(body: Any) -> str | None:
    """Anthropic's `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('type', 'error')}: {error.get('message', '')}"
    return None
