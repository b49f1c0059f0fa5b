"""The OpenAI-shaped chat response and stream chunk every provider adapter returns."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec


class Usage(msgspec.Struct, omit_defaults=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ResponseMessage(msgspec.Struct, omit_defaults=True):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None


class Choice(msgspec.Struct, omit_defaults=True):
    index: int = 0
    message: ResponseMessage = msgspec.field(default_factory=ResponseMessage)
    finish_reason: str | None = "stop"
    logprobs: dict[str, Any] | None = None


class ChatResponse(msgspec.Struct, omit_defaults=True):
    """A non-streamed answer in OpenAI's chat-completion shape."""

    model: str
    choices: list[Choice]
    usage: Usage | None = None
    id: str = msgspec.field(default_factory=lambda: new_id("chatcmpl"))
    object: str = "chat.completion"
    created: int = msgspec.field(default_factory=lambda: int(time.time()))
    system_fingerprint: str | None = None

    @property
    def text(self) -> str:
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None

    @property
    def tool_calls(self) -> list[dict[str, Any]] | None:
        return self.choices[0].message.tool_calls if self.choices else None

    @property
    def logprobs(self) -> dict[str, Any] | None:
        return self.choices[0].logprobs if self.choices else None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self)
        return body


class StreamChunk(msgspec.Struct, omit_defaults=True):
    """One `chat.completion.chunk` of a streamed answer (OpenAI's shape, as a plain dict)."""

    data: dict[str, Any]

    @property
    def delta_text(self) -> str:
        choices = self.data.get("choices") or []
        if not choices:
            return ""
        return str((choices[0].get("delta") or {}).get("content") or "")

    @property
    def finish_reason(self) -> str | None:
        choices = self.data.get("choices") or []
        return choices[0].get("finish_reason") if choices else None

    @property
    def usage(self) -> Usage | None:
        usage = self.data.get("usage")
        return msgspec.convert(usage, Usage) if usage else None


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"
