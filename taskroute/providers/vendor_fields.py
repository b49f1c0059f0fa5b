"""How provider-specific fields and headers travel in an OpenAI-shaped `ChatRequest`, and how
each adapter keeps the other vendor's out of its request.

Who is the wrong provider: **OpenAI's own API** (api.openai.com, Azure OpenAI) refuses
arguments it does not know, so it gets none of Anthropic's. An **OpenAI-compatible server**
(vLLM, llama.cpp, OpenRouter, a LiteLLM proxy, ...) gets the caller's body as sent, as it always
did — several take `top_k`, `thinking` or `cache_control` — less taskroute's own wrappers.

- **Anthropic's top-level fields** (`thinking`, `top_k`, `stop_sequences`) ride in
  `ChatRequest.extra` under their own names, whichever API the client used: the Anthropic
  adapter sends them; for OpenAI's own API they are dropped (`stop_sequences` becoming `stop`
  when the request has none).
- **`cache_control`** stays on the content part, system part or tool it marks (as LiteLLM
  and OpenRouter write it in OpenAI's shape): the Anthropic adapter puts it on the block it
  translates that part into; for OpenAI's own API it is removed.
- **Anthropic blocks and tools the translator does not know** (`document`, `thinking`,
  server tools, ...) arriving on `/v1/messages` are kept whole, wrapped as a part or tool
  `{"type": "anthropic", "block": {...}}`: the Anthropic adapter unwraps them, the OpenAI
  adapter always leaves them out. A part of a type the translator does not know sent by an
  OpenAI-API client is the caller's own and goes to either upstream as it is.
- **Thinking**: an Anthropic answer's thinking blocks come back on the message as
  `reasoning_content` (text) and `thinking_blocks` (whole, signed), streamed as
  `reasoning_content` deltas and each whole block in a `thinking_blocks` delta when it ends;
  an assistant message sent back with `thinking_blocks` gives them to an Anthropic upstream
  and not to OpenAI's own API.
- **Reasoning effort** (`reasoning_effort`, from chat completions or the Responses API's
  `reasoning.effort`): OpenAI's own API gets it for its reasoning models only (o1, o3, o4,
  gpt-5: `supports_reasoning_effort`), since the others refuse the argument; an Anthropic
  upstream gets it as extended thinking with a budget (`thinking_for_effort`) unless the
  request sets `thinking` itself; an OpenAI-compatible server gets it as sent.
- **Client headers meant for an upstream** (`anthropic-beta`) travel in
  `ChatRequest.upstream_headers`, set by the gateway from the client's request and never read
  from the body; each adapter sends only the ones for its vendor (`FORWARDED`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANTHROPIC_FIELDS = ("thinking", "top_k", "stop_sequences")
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


# OpenAI's models that take `reasoning_effort` (the others answer 400 to it).
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Anthropic's thinking budget for each effort (LiteLLM's mapping).
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}


def supports_reasoning_effort(model: str) -> bool:
    """Does this OpenAI model take `reasoning_effort`?"""
    return model.startswith(_REASONING_PREFIXES)


def thinking_for_effort(effort: Any) -> dict[str, Any] | None:
    """Anthropic's `thinking` for a reasoning effort; None for `none` or an unknown one."""
    budget = _THINKING_BUDGETS.get(str(effort))
    return {"type": "enabled", "budget_tokens": budget} if budget else None


def openai_body(
    body: dict[str, Any], *, openai_itself: bool = True, model: str = "",
) -> dict[str, Any]:
    """`body` (a chat-completions body) without taskroute's wrapped Anthropic blocks, and for
    OpenAI's own API (`openai_itself`) without anything else only Anthropic understands, nor
    a reasoning effort `model` does not take."""
    if openai_itself:
        if "reasoning_effort" in body and not supports_reasoning_effort(model):
            del body["reasoning_effort"]
        for name in ANTHROPIC_FIELDS:
            value = body.pop(name, None)
            if name == "stop_sequences" and value and not body.get("stop"):
                body["stop"] = value
    if body.get("tools"):
        body["tools"] = [_clean(t, openai_itself) for t in body["tools"]
                         if t.get("type") != WRAPPED]
    body["messages"] = [_message(m, openai_itself) for m in body.get("messages") or []]
    return body


def _message(message: dict[str, Any], openai_itself: bool) -> dict[str, Any]:
    if openai_itself and "thinking_blocks" in message:
        message = {k: v for k, v in message.items() if k != "thinking_blocks"}
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = [_clean(p, openai_itself) for p in content
             if isinstance(p, dict) and p.get("type") != WRAPPED]
    if not parts and message.get("role") != "assistant":
        parts = [{"type": "text", "text": ""}]
    return {**message, "content": parts or None}


def _clean(item: dict[str, Any], openai_itself: bool) -> dict[str, Any]:
    if not openai_itself or "cache_control" not in item:
        return item
    return {k: v for k, v in item.items() if k != "cache_control"}
