"""The gateway's direction of Anthropic's Messages API: a client's Messages request as an
OpenAI-shaped `ChatRequest` (`from_messages_request`), and an answer back in the Messages shape
(`to_messages_response`) — the same shapes `anthropic_format` translates for the adapter the
other way round. Blocks and tools the translation does not know are kept whole
(`vendor_fields`)."""

from __future__ import annotations

from typing import Any

from taskroute.providers.anthropic_format import STOP_REASONS, Block, tool_call, tool_use
from taskroute.providers.vendor_fields import wrap
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, ResponseMessage, Usage


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
        messages.append({"role": "system", "content": _system_content(system)})
    for turn in body.get("messages") or []:
        messages.extend(_openai_messages(turn))
    fields: dict[str, Any] = {"messages": messages, "model": body.get("model", "auto")}
    if body.get("max_tokens") is not None:
        fields["max_tokens"] = body["max_tokens"]
    for name, target in (("temperature", "temperature"), ("top_p", "top_p"),
                         ("stop_sequences", "stop"), ("stream", "stream"), ("top_k", "top_k"),
                         ("thinking", "thinking")):
        if body.get(name) is not None:
            fields[target] = body[name]
    if body.get("tools"):
        fields["tools"] = [_function_tool(t) for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(
            choice.get("type", ""), {"type": "function", "function": {"name": choice.get("name")}})
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        fields["user"] = user
    return ChatRequest.from_dict(fields)


def _system_content(system: Any) -> str | list[dict[str, Any]]:
    """A system string, or its blocks as parts when one carries more than text."""
    if isinstance(system, str):
        return system
    blocks = [b for b in system if isinstance(b, dict)]
    if all(b.keys() <= {"type", "text"} and b.get("type") == "text" for b in blocks):
        return "\n".join(b.get("text", "") for b in blocks)
    return [_part(b) if b.get("type") == "text" else wrap(b) for b in blocks]


def _function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A client tool as an OpenAI function; a server tool (web search, bash, ...) whole."""
    if tool.get("type") not in (None, "custom"):
        return wrap(tool)
    converted: dict[str, Any] = {"type": "function", "function": {
        "name": tool.get("name"), "description": tool.get("description", ""),
        "parameters": tool.get("input_schema") or {}}}
    if tool.get("cache_control"):
        converted["cache_control"] = tool["cache_control"]
    return converted


def _part(block: dict[str, Any]) -> dict[str, Any]:
    """A text or image block as an OpenAI content part, its `cache_control` kept."""
    if block.get("type") == "image":
        source = block.get("source") or {}
        url = source.get("url") or (
            f"data:{source.get('media_type')};base64,{source.get('data')}")
        part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    else:
        part = {"type": "text", "text": block.get("text", "")}
    if block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _openai_messages(turn: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = turn.get("role", "user"), turn.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind in ("text", "image"):
            parts.append(_part(block))
        elif kind == "tool_use":
            calls.append(tool_call(block.get("id", ""), block.get("name", ""),
                                   block.get("input") or {}))
        elif kind == "tool_result":
            out.append(_tool_message(block))
        else:  # document, thinking, search results, ...: kept whole for Anthropic upstreams
            parts.append(wrap(block))
    if parts or calls:
        message: dict[str, Any] = {"role": role}
        only_text = all(p["type"] == "text" and p.keys() == {"type", "text"} for p in parts)
        message["content"] = "".join(p["text"] for p in parts) if only_text else parts
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tool_message(block: dict[str, Any]) -> dict[str, Any]:
    """A tool result as a tool message; one with more than text (images, `is_error`,
    `cache_control`) also keeps its block whole for an Anthropic upstream."""
    text = _result_text(block.get("content"))
    message: dict[str, Any] = {"role": "tool", "tool_call_id": block.get("tool_use_id", ""),
                               "content": text}
    content = block.get("content")
    plain = isinstance(content, str) or all(
        isinstance(b, dict) and b.keys() <= {"type", "text"} for b in content or [])
    if not plain or block.keys() - {"type", "tool_use_id", "content"}:
        message["content"] = [{"type": "text", "text": text}, wrap(block)]
    return message


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


# -- OpenAI → Anthropic (the gateway's response) ------------------------------------------------

def to_messages_response(response: ChatResponse) -> dict[str, Any]:
    """A `ChatResponse` in the Messages API's shape."""
    message = response.choices[0].message if response.choices else ResponseMessage()
    thinking = message.thinking_blocks
    content: list[Block] = list(thinking) if isinstance(thinking, list) else []
    if message.content:
        content.append({"type": "text", "text": message.content})
    for call in message.tool_calls or []:
        content.append(tool_use(call))
    used = response.usage or Usage()
    return {
        "id": response.id if response.id.startswith("msg_") else "msg_" + response.id[-24:],
        "type": "message", "role": "assistant", "model": response.model, "content": content,
        "stop_reason": STOP_REASONS.get(response.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": messages_usage(used),
    }
