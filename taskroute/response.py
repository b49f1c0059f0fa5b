"""The OpenAI-shaped chat response and stream chunk every provider adapter returns."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

Details = dict[str, Any] | msgspec.UnsetType | None


class Usage(msgspec.Struct):
    """Token counts in OpenAI's shape, every field its schema requires always written.

    `prompt_tokens` counts every input token, cached ones included: `prompt_tokens_details`
    says how many were read from the prompt cache (`cached_tokens`), and
    `cache_creation_input_tokens` (Anthropic's name, as LiteLLM spells it in OpenAI's shape)
    how many were written to it. `completion_tokens` includes the reasoning tokens that
    `completion_tokens_details.reasoning_tokens` counts. Details a provider did not report are
    left out of the JSON.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: Details = msgspec.UNSET
    completion_tokens_details: Details = msgspec.UNSET
    cache_creation_input_tokens: int | msgspec.UnsetType | None = msgspec.UNSET

    @property
    def cached_tokens(self) -> int:
        """Input tokens read from the prompt cache."""
        return _detail(self.prompt_tokens_details, "cached_tokens")

    @property
    def cache_write_tokens(self) -> int:
        """Input tokens written to the prompt cache (Anthropic)."""
        value = self.cache_creation_input_tokens
        return int(value) if isinstance(value, int) else 0

    @property
    def reasoning_tokens(self) -> int:
        """Output tokens spent on reasoning (part of `completion_tokens`)."""
        return _detail(self.completion_tokens_details, "reasoning_tokens")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self)
        return body


def _detail(details: Details, key: str) -> int:
    if not isinstance(details, dict):
        return 0
    value = details.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


# Every field OpenAI's schema requires is written, null or not (`omit_defaults` would drop
# `index: 0`, `role: "assistant"`, `finish_reason: "stop"` and `object`: the SDK reads None).

class ResponseMessage(msgspec.Struct):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    # An Anthropic model's thinking (LiteLLM's names), left out of the JSON when there is none:
    # as text, and as the blocks themselves (with their signatures, to send back next turn).
    reasoning_content: str | msgspec.UnsetType | None = msgspec.UNSET
    thinking_blocks: list[dict[str, Any]] | msgspec.UnsetType | None = msgspec.UNSET


class Choice(msgspec.Struct):
    index: int = 0
    message: ResponseMessage = msgspec.field(default_factory=ResponseMessage)
    finish_reason: str | None = "stop"
    logprobs: dict[str, Any] | None = None


class ChatResponse(msgspec.Struct):
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
    def delta(self) -> dict[str, Any] | None:
        """The first choice's delta (the dict itself: changing it changes the chunk)."""
        choices = self.data.get("choices") or []
        delta = choices[0].get("delta") if choices else None
        return delta if isinstance(delta, dict) else None

    @property
    def delta_text(self) -> str:
        delta = self.delta
        return str(delta.get("content") or "") if delta else ""

    @property
    def finish_reason(self) -> str | None:
        choices = self.data.get("choices") or []
        return choices[0].get("finish_reason") if choices else None

    @property
    def usage(self) -> Usage | None:
        usage = self.data.get("usage")
        return msgspec.convert(usage, Usage) if usage else None


def complete_chunk(data: dict[str, Any], *, fallback_id: str) -> dict[str, Any]:
    """`data` with every field OpenAI's chunk schema requires (`id`, `object`, `created`, and
    each choice's `index`, `delta` and `finish_reason`), whoever sent it; changed in place."""
    if not data.get("id"):
        data["id"] = fallback_id
    data.setdefault("object", "chat.completion.chunk")
    if not isinstance(data.get("created"), int):
        data["created"] = int(time.time())
    for position, choice in enumerate(data.get("choices") or []):
        if isinstance(choice, dict):
            choice.setdefault("index", position)
            if not isinstance(choice.get("delta"), dict):
                choice["delta"] = {}
            choice.setdefault("finish_reason", None)
    return data


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"
