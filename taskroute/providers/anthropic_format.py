"""Conversions between OpenAI's chat-completions shapes and Anthropic's Messages API.

Both directions: the Anthropic adapter sends OpenAI-shaped requests as Messages and reads the
answers back (`to_messages_request`, `from_messages_response`); the gateway serves the Messages
API to clients the other way round (`from_messages_request`, `to_messages_response`). Streams are
translated in `anthropic_stream`.
"""

from __future__ import annotations

import json
from typing import Any

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
        body["tools"] = [_tool(t) for t in request.tools if t.get("type", "function") == "function"]
    choice = _tool_choice(request.tool_choice, request.extra.get("parallel_tool_calls"))
    if choice and request.tools:
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # OpenAI allows 0-2, Anthropic 0-1
    stop = request.extra.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.extra.get("top_p") is not None:
        body["top_p"] = request.extra["top_p"]
    if request.user:
        body["metadata"] = {"user_id": request.user}
    return body


def _system(request: ChatRequest) -> str:
    parts = [m.text for m in request.messages if m.role in ("system", "developer") and m.text]
    if request.format_kind != "text":
        parts.append(JSON_INSTRUCTION)
        if request.json_schema is not None:
            parts.append(SCHEMA_INSTRUCTION + json.dumps(request.json_schema))
    return "\n\n".join(parts)


def _turns(request: ChatRequest) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            continue
        if message.role in ("tool", "function"):
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": message.tool_call_id
                                     or "", "content": message.text}]
        else:
            role = "assistant" if message.role == "assistant" else "user"
            blocks = _content_blocks(message.content)
            blocks += [_tool_use(call) for call in message.tool_calls or []]
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _content_blocks(content: str | list[dict[str, Any]] | None) -> list[Block]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[Block] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url") or {}))
    return blocks


def _image(image: dict[str, Any]) -> Block:
    url = str(image.get("url", ""))
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_use(call: dict[str, Any]) -> Block:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        arguments = {}
    return {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
            "input": arguments}


def _tool(tool: dict[str, Any]) -> Block:
    function = tool.get("function") or {}
    converted: Block = {"name": function.get("name", ""),
                        "input_schema": function.get("parameters")
                        or {"type": "object", "properties": {}}}
    if function.get("description"):
        converted["description"] = function["description"]
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
    message = ResponseMessage(content=text if text or not calls else None,
                              tool_calls=calls or None)
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


def messages_usage(used: Usage) -> dict[str, int]:
    """OpenAI-shaped usage as Anthropic's: input after the cache, cache reads and writes."""
    read, write = used.cached_tokens, used.cache_write_tokens
    return {"input_tokens": max(used.prompt_tokens - read - write, 0),
            "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "output_tokens": used.completion_tokens}


# -- Anthropic → OpenAI (the gateway's request) -------------------------------------------------

def from_messages_request(body: dict[str, Any]) -> ChatRequest:
    """A client's Messages API body as an OpenAI-shaped `ChatRequest`."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n".join(
            b.get("text", "") for b in system if isinstance(b, dict))
        messages.append({"role": "system", "content": text})
    for turn in body.get("messages") or []:
        messages.extend(_openai_messages(turn))
    fields: dict[str, Any] = {"messages": messages, "model": body.get("model", "auto")}
    if body.get("max_tokens") is not None:
        fields["max_tokens"] = body["max_tokens"]
    for name, target in (("temperature", "temperature"), ("top_p", "top_p"),
                         ("stop_sequences", "stop"), ("stream", "stream")):
        if body.get(name) is not None:
            fields[target] = body[name]
    if body.get("tools"):
        fields["tools"] = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("input_schema") or {}}} for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(
            choice.get("type", ""), {"type": "function", "function": {"name": choice.get("name")}})
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        fields["user"] = user
    return ChatRequest.from_dict(fields)


def _openai_messages(turn: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = turn.get("role", "user"), turn.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            source = block.get("source") or {}
            url = source.get("url") or (
                f"data:{source.get('media_type')};base64,{source.get('data')}")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            calls.append(tool_call(block.get("id", ""), block.get("name", ""),
                                   block.get("input") or {}))
        elif kind == "tool_result":
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""),
                        "content": _result_text(block.get("content"))})
    if parts or calls:
        message: dict[str, Any] = {"role": role}
        only_text = all(p["type"] == "text" for p in parts)
        message["content"] = "".join(p["text"] for p in parts) if only_text else parts
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


# -- OpenAI → Anthropic (the gateway's response) ------------------------------------------------

def to_messages_response(response: ChatResponse) -> dict[str, Any]:
    """A `ChatResponse` in the Messages API's shape."""
    message = response.choices[0].message if response.choices else ResponseMessage()
    content: list[Block] = []
    if message.content:
        content.append({"type": "text", "text": message.content})
    for call in message.tool_calls or []:
        content.append(_tool_use(call))
    used = response.usage or Usage()
    return {
        "id": response.id if response.id.startswith("msg_") else "msg_" + response.id[-24:],
        "type": "message", "role": "assistant", "model": response.model, "content": content,
        "stop_reason": STOP_REASONS.get(response.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": messages_usage(used),
    }
