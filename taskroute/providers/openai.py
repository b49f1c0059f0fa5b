"""OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp, Groq, Together, ...).

The body is the caller's request as sent (unknown fields pass through) with `model` replaced by
the upstream name. Streams ask for `stream_options.include_usage`, so the last chunk carries
usage. Auth is `Authorization: Bearer <key>` when the policy names a key variable; a vendor that
wants the key elsewhere (Azure's `api-key: <key>`) passes `key_header` and `key_prefix`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

from taskroute.exceptions import (
    MalformedResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatus,
)
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.errors import Clock, upstream_errors
from taskroute.providers.http import HttpClient
from taskroute.providers.sse import EventReader
from taskroute.providers.vendor_fields import openai_body
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk

_decode_chunk = msgspec.json.Decoder(dict[str, Any])
T = TypeVar("T")


class OpenAIProvider:
    """A `Provider` for any server speaking OpenAI's `POST /chat/completions`."""

    def __init__(
        self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None,
        key_header: str = "Authorization", key_prefix: str = "Bearer ",
        stream_usage: bool = True,
    ) -> None:
        self.name = spec.name
        # False for a server that refuses `stream_options` (see docs/providers.md)
        self._stream_usage = stream_usage
        self._http = HttpClient(spec, env=env)
        self._key_header, self._key_prefix = key_header, key_prefix
        # api.openai.com rejects max_tokens for reasoning models; others may not know the new name
        self.openai_itself = urlsplit(spec.base_url).hostname == "api.openai.com"
        self._max_tokens_field = "max_completion_tokens" if self.openai_itself else "max_tokens"

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the Provider protocol ------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        body = self._body(request, model, stream=False)
        return await self._post_json(self.path(model), body, model, timeouts, ChatResponse)

    async def embed(
        self, body: dict[str, Any], *, model: str, timeouts: Timeouts
    ) -> dict[str, Any]:
        """`Embedder`: one `POST /embeddings` (Azure: the deployment's `/embeddings`)."""
        path = self.path(model).replace("/chat/completions", "/embeddings", 1)
        return await self._post_json(path, {**body, "model": model}, model, timeouts,
                                     dict[str, Any])

    async def _post_json(
        self, path: str, body: dict[str, Any], model: str, timeouts: Timeouts,
        kind: type[T],
    ) -> T:
        """One non-streamed POST, its JSON answer decoded as `kind`; errors as `UpstreamError`s."""
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            _, raw = await self._http.exchange(path, body, self._headers(), clock,
                                               self._http.status_error(model, error_message))
            return msgspec.json.decode(raw, type=kind, strict=False)

    def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChunkStream:
        return ChunkStream(self, request, model, timeouts)

    async def open_stream(
        self, request: ChatRequest, model: str, clock: Clock
    ) -> aiohttp.ClientResponse:
        """Send a streamed request; the response once its headers show an event stream."""
        headers, body = self._headers(), self._body(request, model, stream=True)
        return await self._http.open_stream(self.path(model), body, headers, clock,
                                            self._http.status_error(model, error_message))

    def path(self, model: str) -> str:
        """Where a model's chat completions are posted, after the base URL (Azure differs)."""
        return "/chat/completions"

    def end_stream(self, response: aiohttp.ClientResponse, *, complete: bool) -> None:
        """A stream read to its end back to the pool, else hung up (`HttpClient.end_stream`)."""
        self._http.end_stream(response, complete=complete)

    def errors(self, model: str, clock: Clock) -> AbstractContextManager[None]:
        """The block's failures as `UpstreamError`s (see `upstream_errors`)."""
        return upstream_errors(self.name, model, clock, self._http.redact)

    # -- the wire format ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **self._http.headers()}
        key = self._http.key()
        if key is not None:
            headers[self._key_header] = f"{self._key_prefix}{key.reveal()}"
        return headers

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        # without Anthropic's own fields (vendor_fields)
        body = openai_body(request.to_dict(), openai_itself=self.openai_itself, model=model)
        body["model"] = model
        if "max_tokens" in body and self._max_tokens_field != "max_tokens":
            body[self._max_tokens_field] = body.pop("max_tokens")
        if not body.get("store"):
            body.pop("metadata", None)  # taskroute's routing metadata; OpenAI wants it with store
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body["stream_options"] = {**(body.get("stream_options") or {}),
                                          "include_usage": True}
            else:
                body.pop("stream_options", None)
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body



def build(spec: ProviderSpec, env: Mapping[str, str] | None) -> OpenAIProvider:
    """The `openai` provider kind, registered in `taskroute.plugins.PROVIDERS`. Its one
    option, `stream usage: false`, leaves `stream_options` out of streamed requests."""
    unknown = set(spec.options) - {"stream_usage"}
    if unknown:
        raise ValueError("the openai provider kind takes only 'stream usage', got "
                         f"{', '.join(sorted(k.replace('_', ' ') for k in unknown))}")
    usage = spec.options.get("stream_usage", True)
    if not isinstance(usage, bool):
        raise ValueError(f"'stream usage' is true or false, got {usage!r}")
    return OpenAIProvider(spec, env=env, stream_usage=usage)


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


class ChunkStream:
    """One streamed call, as an async iterator of chunks. The request goes out on the first
    `__anext__`. Each network read is parsed whole, so `ready()` can tell a consumer that the
    next chunk (or the end) is at hand without waiting: the gateway batches its writes by it.
    Chunks come out in order, then the end or the stream's error; closing it early (`aclose`)
    hangs up, and the upstream stops too."""

    __slots__ = ("_clock", "_end", "_finished", "_model", "_provider", "_queue", "_reader",
                 "_request", "_response", "_timeouts")

    def __init__(
        self, provider: OpenAIProvider, request: ChatRequest, model: str, timeouts: Timeouts
    ) -> None:
        self._provider = provider
        self._request = request
        self._model = model
        self._timeouts = timeouts
        self._clock: Clock | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._reader: EventReader | None = None
        self._queue: deque[StreamChunk] = deque()
        self._end: BaseException | None = None   # after the queue: StopAsyncIteration or error
        self._finished = False                   # a chunk has carried a finish_reason

    def __aiter__(self) -> ChunkStream:
        return self

    def ready(self) -> bool:
        """Will the next `__anext__` answer without waiting on the network?"""
        return bool(self._queue) or self._end is not None

    async def __anext__(self) -> StreamChunk:
        queue = self._queue
        while not queue:
            if self._end is not None:
                end, self._end = self._end, StopAsyncIteration()
                raise end
            await self._fill()
        return queue.popleft()

    async def aclose(self) -> None:
        self._queue.clear()
        self._ended(None)

    async def _fill(self) -> None:
        provider, model = self._provider, self._model
        if self._clock is None:
            self._clock = Clock(self._timeouts)
        with provider.errors(model, self._clock):
            try:
                if self._reader is None:
                    self._response = await provider.open_stream(self._request, model,
                                                                 self._clock)
                    self._reader = EventReader(self._response, self._clock)
                batch = await self._reader.read()
            except BaseException:
                self._ended(None)  # the error goes out now; the stream is over after it
                raise
        if not batch:
            self._ended(None if self._finished else UpstreamConnectionError(
                "the stream ended before the answer finished", model=model),
                complete=self._finished)
            return
        try:
            with provider.errors(model, self._clock):
                for event in batch:
                    if event.data.strip() == "[DONE]":
                        self._ended(None, complete=True)
                        return
                    self._queue.append(self._chunk(event.data))
        except UpstreamError as exc:
            self._ended(exc)

    def _chunk(self, text: str) -> StreamChunk:
        data = _decode_chunk.decode(text)
        if "error" in data:
            raise UpstreamStatus(f"error in the stream: {error_message(data)}", status=500,
                                 body=data)
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise MalformedResponse("a stream chunk without a 'choices' list")
        if not self._finished:
            self._finished = any(isinstance(c, dict) and c.get("finish_reason")
                                 for c in choices)
        return StreamChunk(data)

    def _ended(self, error: BaseException | None, *, complete: bool = False) -> None:
        """The stream is over: `error` (else the end) after the queue; the response handed back
        when `complete` (read to its end), else closed, which hangs up."""
        self._end = error if error is not None else StopAsyncIteration()
        if self._response is not None:
            self._provider.end_stream(self._response, complete=complete)
            self._response = None
