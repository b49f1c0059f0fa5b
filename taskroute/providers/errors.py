"""The one boundary where transport and parsing failures become `UpstreamError`s.

Like httpx's `map_httpcore_exceptions`: every adapter runs its HTTP work inside
`upstream_errors(...)`, and `map_exception` decides what each foreign exception means. A test
walks aiohttp's exception classes and fails if one is left unmapped.

Messages never carry a key: they are built from the provider's name, the model, and the
upstream's own error message with the key redacted.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
import msgspec

from taskroute.exceptions import (
    ContextTooLong,
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.providers.base import Timeouts

# Everything that can escape an aiohttp call or our parsing of what it returned.
MAPPED: tuple[type[BaseException], ...] = (
    aiohttp.ClientError, TimeoutError, OSError, ValueError, TypeError, KeyError,
    msgspec.DecodeError, msgspec.ValidationError,
)


class Clock:
    """The deadlines of one call. Until `started()`, the first-token deadline applies."""

    __slots__ = ("first_at", "started_at", "timeouts", "total_at")

    def __init__(self, timeouts: Timeouts) -> None:
        now = asyncio.get_running_loop().time()
        self.timeouts = timeouts
        self.total_at = now + timeouts.total
        self.first_at = min(now + timeouts.first_token, self.total_at)
        self.started_at: float | None = None

    def started(self) -> None:
        if self.started_at is None:
            self.started_at = asyncio.get_running_loop().time()

    def deadline(self) -> float:
        return self.total_at if self.started_at is not None else self.first_at

    def phase(self) -> str:
        """Which deadline a timeout now would have broken."""
        if self.started_at is None and self.first_at < self.total_at:
            return "first_token"
        return "total"


def map_exception(
    exc: BaseException, *, provider: str, model: str | None, phase: str = "total",
    redact: Callable[[str], str] = str,
) -> UpstreamError:
    """What a foreign exception means, as an `UpstreamError`; `phase` names a running deadline."""
    where = f"{provider} ({model})" if model else provider
    detail = redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"{where}: connect timed out", model=model, phase="connect")
    if isinstance(exc, TimeoutError):  # asyncio deadlines, aiohttp's socket-read timeouts
        return UpstreamTimeout(f"{where}: {phase.replace('_', ' ')} deadline passed",
                               model=model, phase=phase)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(f"{where}: cannot connect: {detail}", model=model)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamConnectionError(f"{where}: connection dropped mid-answer: {detail}",
                                       model=model)
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamStatus(f"{where}: {detail}", status=exc.status, model=model)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return UpstreamConnectionError(f"{where}: connection failed: {detail}", model=model)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return UpstreamConnectionError(f"{where}: bad upstream URL: {detail}", model=model)
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamConnectionError(f"{where}: HTTP client error: {detail}", model=model)
    return MalformedResponse(f"{where}: malformed response: {detail}", model=model)


@contextmanager
def upstream_errors(
    provider: str, model: str, clock: Clock, redact: Callable[[str], str] = str
) -> Iterator[None]:
    """Translate every failure inside the block; `UpstreamError`s pass through untouched."""
    try:
        yield
    except UpstreamError as exc:
        if exc.model is None:
            exc.model = model
        raise
    except MAPPED as exc:
        # `from None`: aiohttp exceptions can hold the request's headers, and so the key.
        raise map_exception(exc, provider=provider, model=model, phase=clock.phase(),
                            redact=redact) from None


def status_error(
    status: int, headers: Mapping[str, str], raw: bytes, *, provider: str, model: str,
    message_of: Callable[[Any], str | None], redact: Callable[[str], str] = str,
) -> UpstreamStatus:
    """An error status as `UpstreamStatus` (429: `RateLimited`), with the upstream's message."""
    try:
        body: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        body = raw.decode("utf-8", "replace")[:500]
    message = (message_of(body) if not isinstance(body, str) else None) or body or "no body"
    text = redact(f"{provider} ({model}) answered {status}: {message}")
    if status == 429:
        return RateLimited(text, retry_after=retry_after(headers), model=model, body=body)
    if status in (400, 413) and is_context_length(body, message):
        return ContextTooLong(text, status=status, model=model, body=body)
    return UpstreamStatus(text, status=status, model=model, body=body)


# How each vendor says a request is longer than the model's context window (OpenAI and the
# servers copying it, Anthropic, Bedrock, Gemini), lower-cased.
_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "prompt is too long",
                    "input is too long", "exceeds the maximum number of tokens",
                    "context window")


def is_context_length(body: Any, message: str) -> bool:
    """Does an error answer say the request is too long for the model's context window?"""
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and (
            body["error"].get("code") == "context_length_exceeded"):
        return True
    lowered = str(message).lower()
    return any(marker in lowered for marker in _CONTEXT_MARKERS)


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
