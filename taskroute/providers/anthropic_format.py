"""Conversions between OpenAI's chat-completions shapes and Anthropic's Messages API.

The adapter's direction: it sends OpenAI-shaped requests as Messages and reads the answers back
(`to_messages_request`, `from_messages_response`). The gateway serves the Messages API to
clients the other way round (`anthropic_inbound`); streams are translated in
`anthropic_stream`; how Anthropic's own fields travel is `vendor_fields`.
"""

from __future__ import annotations

import json
from typing import Any

from taskroute.providers.turns import add_turn
from taskroute.providers.vendor_fields import WRAPPED, thinking_for_effort
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, Choice, ResponseMessage, Usage, new_id

# How a JSON answer is asked of a model that has no response_format: in the system prompt.
JSON_INSTRUCTION = "Respond with a single JSON object and nothing else: no prose, no code fences."
SCHEMA_INSTRUCTION = "The JSON object must be valid against this JSON Schema: "
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "stop_sequence": "stop", "pause_turn": "stop", "refusal": "content_filter"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
Block = dict[str, Any]
THINKING_BLOCKS = ("thinking", "redacted_thinking")


# -- OpenAI → Anthropic (the adapter's request) -------------------------------------------------

def to_messages_request(
    request: ChatRequest, model: str, *, default_max_tokens: int = DEFAULT_MAX_TOKENS,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": _turns(request),
                            "max_tokens": request.max_tokens or default_max_tokens}
    system = _system(request)
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools
                         if t.get("type", "function") in ("function", WRAPPED)]
    choice = _tool_choice(request.tool_choice, request.extra.get("parallel_tool_calls"))
    if choice and request.tools:
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # OpenAI allows 0-2, Anthropic 0-1
    stop = request.extra.get("stop") or request.extra.get("stop_sequences")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name in ("top_p", "top_k", "thinking"):  # Anthropic's own ride in extra (vendor_fields)
        if request.extra.get(name) is not None:
            body[name] = request.extra[name]
    if "thinking" not in body and request.extra.get("reasoning_effort") is not None:
        thinking = thinking_for_effort(request.extra["reasoning_effort"])
        if thinking is not None:  # thinking needs room: max_tokens must exceed its budget
            body["thinking"] = thinking
            body["max_tokens"] = max(body["max_tokens"], thinking["budget_tokens"] + 1024)
            body.pop("temperature", None)  # Anthropic refuses a temperature with thinking
    user = request.end_user
    if user:
        body["metadata"] = {"user_id": user}
    return body


def _system(request: ChatRequest) -> str | list[Block]:
    """The system prompt: a string, or blocks when a part carries more than text (a
    `cache_control` breakpoint)."""
    blocks: list[Block] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            blocks += [b for b in _content_blocks(message.content) if b.get("text") != ""]
    if request.format_kind != "text":
        blocks.append({"type": "text", "text": JSON_INSTRUCTION})
        if request.json_schema is not None:
            blocks.append({"type": "text",
                           "text": SCHEMA_INSTRUCTION + json.dumps(request.json_schema)})
    if any(b.keys() != {"type", "text"} or b["type"] != "text" for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


def _turns(request: ChatRequest) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            continue
        if message.role in ("tool", "function"):
            role, blocks = "user", [_tool_result(message.tool_call_id, message.content,
                                                 message.text)]
        else:
            role = "assistant" if message.role == "assistant" else "user"
            blocks = [*(message.thinking_blocks or ()), *_content_blocks(message.content)]
            blocks += [tool_use(call) for call in message.tool_calls or []]
        add_turn(turns, role, blocks, "content")
    return turns


def _content_blocks(content: str | list[dict[str, Any]] | None) -> list[Block]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[Block] = []
    for part in content:
        kind = part.get("type")
        if kind == WRAPPED:               # an Anthropic block kept whole (vendor_fields)
            blocks.append(part["block"])
            continue
        if kind == "text":
            block = {"type": "text", "text": part.get("text", "")}
        elif kind == "image_url":
            block = _image(part.get("image_url") or {})
        else:                             # a type the translator does not know: as sent
            blocks.append(part)
            continue
        if part.get("cache_control"):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _tool_result(call_id: str | None, content: Any, text: str) -> Block:
    parts = content if isinstance(content, list) else []
    for part in parts:
        if part.get("type") == WRAPPED and part["block"].get("type") == "tool_result":
            return dict(part["block"])    # the client's own block, whole
    block: Block = {"type": "tool_result", "tool_use_id": call_id or "", "content": text}
    marks = [p["cache_control"] for p in parts if p.get("cache_control")]
    if marks:
        block["cache_control"] = marks[-1]
    return block


def _image(image: dict[str, Any]) -> Block:
    url = str(image.get("url", ""))
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def tool_use(call: dict[str, Any]) -> Block:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        arguments = {}
    return {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
            "input": arguments}


def _tool(tool: dict[str, Any]) -> Block:
    if tool.get("type") == WRAPPED:
        return dict(tool["block"])
    function = tool.get("function") or {}
    converted: Block = {"name": function.get("name", ""),
                        "input_schema": function.get("parameters")
                        or {"type": "object", "properties": {}}}
    if function.get("description"):
        converted["description"] = function["description"]
    if tool.get("cache_control"):
        converted["cache_control"] = tool["cache_control"]
    return converted


def _tool_choice(choice: str | dict[str, Any] | None, parallel: Any) -> dict[str, Any] | None:
    converted: dict[str, Any] | None
    if choice is None or choice == "auto":
        converted = {"type": "auto"} if parallel is False else None
    elif choice == "required":
        converted = {"type": "any"}
    elif choice == "none":
        converted = {"type": "none"}
    elif isinstance(choice, dict):
        converted = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    else:
        converted = None
    if converted is not None and parallel is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    return converted


# -- Anthropic → OpenAI (the adapter's response) ------------------------------------------------

def from_messages_response(data: dict[str, Any]) -> ChatResponse:
    """A Messages API answer as a `ChatResponse`; raises KeyError/TypeError on a wrong shape."""
    content = data["content"]
    if not isinstance(content, list):
        raise TypeError("'content' is not a list")
    text = "".join(b["text"] for b in content if b.get("type") == "text")
    calls = [tool_call(b["id"], b["name"], b.get("input") or {})
             for b in content if b.get("type") == "tool_use"]
    thinking = [b for b in content if b.get("type") in THINKING_BLOCKS]
    message = ResponseMessage(content=text if text or not calls else None,
                              tool_calls=calls or None)
    if thinking:
        message.thinking_blocks = thinking
        message.reasoning_content = "".join(str(b.get("thinking", "")) for b in thinking)
    finish = FINISH_REASONS.get(str(data.get("stop_reason")), "stop")
    return ChatResponse(model=str(data["model"]), choices=[Choice(message=message,
                        finish_reason=finish)], usage=usage(data.get("usage") or {}),
                        id=str(data.get("id") or new_id("chatcmpl")))


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


def usage(data: dict[str, Any]) -> Usage:
    """Anthropic's usage in OpenAI's shape: `prompt_tokens` is every input token (Anthropic's
    `input_tokens` counts only those after the last cache breakpoint), the cache reads as
    `prompt_tokens_details.cached_tokens`, the cache writes as `cache_creation_input_tokens`."""
    read = int(data.get("cache_read_input_tokens") or 0)
    write = int(data.get("cache_creation_input_tokens") or 0)
    prompt = int(data.get("input_tokens") or 0) + read + write
    completion = int(data.get("output_tokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion, prompt_tokens_details={"cached_tokens": read},
                 cache_creation_input_tokens=write)
