"""The one extension point for calling a model: a `Provider` speaks one wire format.

A provider owns its HTTP client (one per provider, pooled, keep-alive), its base URL and its key.
It translates its own errors into `taskroute.exceptions.UpstreamError` subclasses at this
boundary, so nothing above it ever sees a transport library's exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `first_token` bounds the wait for response headers / the first SSE event."""

    connect: float = 5.0
    first_token: float = 30.0
    total: float = 120.0


class Provider(Protocol):
    name: str

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        """One non-streamed call of `model` (the provider's own model name)."""
        ...

    def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        """One streamed call; chunks in OpenAI's `chat.completion.chunk` shape, the last one
        carrying `usage`."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    """A provider that also serves embeddings (OpenAI's `POST /embeddings` and servers copying
    it); the gateway's `/v1/embeddings` passes requests to one the policy names."""

    name: str

    async def embed(
        self, body: dict[str, Any], *, model: str, timeouts: Timeouts
    ) -> dict[str, Any]:
        """One embeddings call of `model`: the provider's answer as it sent it."""
        ...
