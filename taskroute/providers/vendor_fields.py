"""How provider-specific fields and headers travel in an OpenAI-shaped `ChatRequest`, and how
each adapter keeps the other vendor's out of its request.

- **Anthropic's top-level fields** (`thinking`, `top_k`, `stop_sequences`) ride in
  `ChatRequest.extra` under their own names, whichever API the client used: the Anthropic
  adapter sends them, the OpenAI adapter drops `thinking` and `stop_sequences` (which becomes
  `stop` when the request has none), and `top_k` too for OpenAI's own API (api.openai.com,
  Azure), which refuses arguments it does not know; OpenAI-compatible servers (vLLM, llama.cpp,
  Together...) take `top_k`, so it reaches them as it always did.
- **`cache_control`** stays on the content part, system part or tool it marks (as LiteLLM
  writes it in OpenAI's shape): the Anthropic adapter puts it on the block it translates that
  part into, the OpenAI adapter removes it.
- **Anthropic blocks and tools the translator does not know** (`document`, `thinking`,
  server tools, ...) arriving on `/v1/messages` are kept whole, wrapped as a part or tool
  `{"type": "anthropic", "block": {...}}`: the Anthropic adapter unwraps them, the OpenAI
  adapter leaves them out. A part of a type the translator does not know sent by an
  OpenAI-API client is the caller's own and goes to either upstream as it is.
- **Thinking**: an Anthropic answer's thinking blocks come back on the message as
  `reasoning_content` (text) and `thinking_blocks` (whole, signed), streamed as
  `reasoning_content` deltas and each whole block in a `thinking_blocks` delta when it ends;
  an assistant message sent back with `thinking_blocks` gives them to an Anthropic upstream
  and not to an OpenAI one.
- **Client headers meant for an upstream** (`anthropic-beta`) travel in
  `ChatRequest.upstream_headers`, set by the gateway from the client's request and never read
  from the body; each adapter sends only the ones for its vendor (`FORWARDED`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANTHROPIC_FIELDS = ("thinking", "top_k", "stop_sequences")
COMPATIBLE_SERVERS_TAKE = ("top_k",)   # ... but not OpenAI's own API
WRAPPED = "anthropic"   # the part / tool type that carries an Anthropic block whole
FORWARDED = {"anthropic-beta": "anthropic"}   # client header → the provider kind it is for


def wrap(block: dict[str, Any]) -> dict[str, Any]:
    return {"type": WRAPPED, "block": block}


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that are meant for an upstream (lower-case names)."""
    return {name: headers[name] for name in FORWARDED if headers.get(name)}


def headers_for(kind: str, upstream: Mapping[str, str], fixed: Mapping[str, str]
                ) -> dict[str, str]:
    """The forwarded headers for a provider of `kind`, a value the policy fixes coming first
    (`anthropic-beta` values are comma-separated lists, so both are kept)."""
    out: dict[str, str] = {}
    lowered = {k.lower(): v for k, v in fixed.items()}
    for name, value in upstream.items():
        if FORWARDED.get(name) != kind:
            continue
        out[name] = f"{lowered[name]},{value}" if lowered.get(name) else value
    return out


def openai_body(body: dict[str, Any], *, openai_itself: bool = True) -> dict[str, Any]:
    """`body` (a chat-completions body) without what only Anthropic understands
    (`openai_itself`: for OpenAI's own API, else for a compatible server)."""
    for name in ANTHROPIC_FIELDS:
        if name in COMPATIBLE_SERVERS_TAKE and not openai_itself:
            continue
        value = body.pop(name, None)
        if name == "stop_sequences" and value and not body.get("stop"):
            body["stop"] = value
    if body.get("tools"):
        body["tools"] = [_without_cache_control(t) for t in body["tools"]
                         if t.get("type") != WRAPPED]
    body["messages"] = [_message(m) for m in body.get("messages") or []]
    return body


def _message(message: dict[str, Any]) -> dict[str, Any]:
    if "thinking_blocks" in message:
        message = {k: v for k, v in message.items() if k != "thinking_blocks"}
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = [_without_cache_control(p) for p in content
             if isinstance(p, dict) and p.get("type") != WRAPPED]
    if not parts and message.get("role") != "assistant":
        parts = [{"type": "text", "text": ""}]
    return {**message, "content": parts or None}


def _without_cache_control(item: dict[str, Any]) -> dict[str, Any]:
    if "cache_control" not in item:
        return item
    return {k: v for k, v in item.items() if k != "cache_control"}
