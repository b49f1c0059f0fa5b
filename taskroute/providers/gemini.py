"""Google's Gemini API (the Generative Language API), behind the OpenAI-shaped Protocol.

`POST {base_url}/v1beta/models/{model}:generateContent`, and for streams
`:streamGenerateContent?alt=sse` (server-sent events, one `GenerateContentResponse` each, no
end marker: the last carries `finishReason` and the usage). The key goes in the
`x-goog-api-key` header. Requests and answers are converted by `gemini_format`.

    providers:
      gemini:
        api: gemini
        base url: https://generativelanguage.googleapis.com
        api key env: GEMINI_API_KEY
        options: {api version: v1beta, safety settings: [{category: ..., threshold: ...}]}

Both options are optional; `safety settings` is sent as Gemini's `safetySettings` as written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from taskroute.exceptions import UpstreamConnectionError, UpstreamStatus
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.errors import Clock, upstream_errors
from taskroute.providers.gemini_format import OpenAIChunks, from_gemini_response, to_gemini_request
from taskroute.providers.http import HttpClient
from taskroute.providers.sse import events
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk

DEFAULT_VERSION = "v1beta"
OPTIONS = ("api_version", "safety_settings")
_decode = msgspec.json.Decoder(dict[str, Any])


class GeminiProvider:
    """A `Provider` for the Gemini API's `generateContent` and `streamGenerateContent`."""

    def __init__(
        self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None,
        api_version: str = DEFAULT_VERSION, safety_settings: list[Any] | None = None,
    ) -> None:
        self.name = spec.name
        self._http = HttpClient(spec, env=env)
        # Accept a base URL written with or without the version suffix.
        suffix = "/" + api_version
        self._prefix = "" if self._http.base_url.endswith(suffix) else suffix
        self._safety = safety_settings

    def __repr__(self) -> str:
        return f"GeminiProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def path(self, model: str, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self._prefix}/models/{quote(model, safe='')}:{method}"

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        headers, body = self._headers(), self._body(request)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            _, raw = await self._http.exchange(self.path(model, stream=False), body, headers,
                                               clock, self._http.status_error(model, error_message))
            return from_gemini_response(_decode.decode(raw), model)

    async def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        headers, body = self._headers(), self._body(request)
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            response = await self._http.open_stream(self.path(model, stream=True), body,
                                                    headers, clock,
                                                    self._http.status_error(model, error_message))
            complete = False
            try:
                translator = OpenAIChunks(model)
                async for event in events(response, clock):
                    data = _decode.decode(event.data)
                    if "error" in data:
                        raise UpstreamStatus(f"error in the stream: {error_message(data)}",
                                             status=int(data["error"].get("code") or 500),
                                             body=data)
                    for chunk in translator.feed(data):
                        yield StreamChunk(chunk)
                if not translator.finished:
                    raise UpstreamConnectionError("the stream ended before the answer finished")
                for chunk in translator.finish():
                    yield StreamChunk(chunk)
                complete = True
            finally:
                # read to its end: back to the pool; stopped early: hung up, the upstream stops
                self._http.end_stream(response, complete=complete)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **self._http.headers()}
        key = self._http.key()
        if key is not None:
            headers["x-goog-api-key"] = key.reveal()
        return headers

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body = to_gemini_request(request)
        if self._safety:
            body["safetySettings"] = self._safety
        return body


def build(spec: ProviderSpec, env: Mapping[str, str] | None) -> GeminiProvider:
    """The `gemini` provider kind, registered in `taskroute.plugins.PROVIDERS`."""
    unknown = set(spec.options) - set(OPTIONS)
    if unknown:
        names = ", ".join(sorted(k.replace("_", " ") for k in unknown))
        raise ValueError("the gemini provider kind takes only 'api version' and 'safety "
                         f"settings', got {names}")
    version = str(spec.options.get("api_version") or DEFAULT_VERSION)
    safety = spec.options.get("safety_settings")
    if safety is not None and not isinstance(safety, list | tuple):
        raise ValueError("'safety settings' is a list of {category, threshold}")
    return GeminiProvider(spec, env=env, api_version=version,
                          safety_settings=None if safety is None else list(safety))


def error_message(body: Any) -> str | None:
    """Google's `{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}`."""
    if isinstance(body, list) and body:   # some Google front ends wrap it in a list
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('status', 'error')}: {error.get('message', '')}"
    return None
