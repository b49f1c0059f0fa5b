"""SIMULATED prompt caching: a prefix the upstream has seen before is read from its cache.

Anthropic caches what a request marks: everything up to its last `cache_control` breakpoint
(tools, then system, then messages), written the first time and read after. OpenAI caches on
its own: every turn before the last, once that prefix is at least 1,024 tokens, and reports
only the reads. Tokens are the simulated count (four characters each).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

OPENAI_MIN_TOKENS = 1024


class PromptCache:
    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def clear(self) -> None:
        self._seen.clear()

    def use(self, model: str, prefix: Any, *, min_tokens: int = 1) -> tuple[int, int]:
        """(tokens read, tokens written) for a request whose cacheable prefix is `prefix`."""
        if not prefix:
            return 0, 0
        text = msgspec.json.encode(prefix)
        tokens = max(1, len(text) // 4)
        if tokens < min_tokens:
            return 0, 0
        key = hashlib.sha256(model.encode() + b"\0" + text).digest()
        if key in self._seen:
            return tokens, 0
        self._seen.add(key)
        return 0, tokens


def anthropic_prefix(body: dict[str, Any]) -> list[Any]:
    """The parts of a Messages body up to and including its last `cache_control` block."""
    parts: list[Any] = list(body.get("tools") or [])
    system = body.get("system")
    parts += [system] if isinstance(system, str) else list(system or [])
    for turn in body.get("messages") or []:
        content = turn.get("content") if isinstance(turn, dict) else None
        parts += [content] if isinstance(content, str) else list(content or [])
    marked = [i for i, part in enumerate(parts)
              if isinstance(part, dict) and part.get("cache_control")]
    return parts[:marked[-1] + 1] if marked else []


def openai_prefix(body: dict[str, Any]) -> list[Any]:
    """Every message before the last (OpenAI caches the shared start of prompts)."""
    messages = body.get("messages") or []
    return list(messages[:-1])
