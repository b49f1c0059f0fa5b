"""OpenAI's Responses API in and out of taskroute's chat shapes, as pure functions.

In: a `/v1/responses` body (string or item input, `instructions`, function tools and their
call/output items, `text.format`, `max_output_tokens`, `reasoning.effort`) becomes the
`ChatRequest` that is routed like any chat completion, after the turns of the response it
continues (`previous_response_id`). Out: the routed `ChatResponse` becomes a `response` object
whose output items are a message and/or function calls.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from taskroute.exceptions import InvalidRequest
from taskroute.request import ChatRequest, Message
from taskroute.response import ChatResponse, Usage, new_id

# Body fields that map onto a chat request; the rest are refused or ride along (below).
_MAPPED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
    "temperature", "top_p", "user", "metadata", "stream", "reasoning", "parallel_tool_calls",
    "previous_response_id", "store", "stream_options", "include", "truncation",
    "service_tier", "prompt_cache_key", "safety_identifier", "background",
})
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_INPUT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "text"}


def check_body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    unknown = sorted(k for k in body if k not in _MAPPED)
    if unknown:
        raise InvalidRequest(f"unsupported field(s) for /v1/responses: {', '.join(unknown)}",
                             param=unknown[0])
    if body.get("background"):
        raise InvalidRequest("background responses are not supported; leave 'background' "
                             "false", param="background")
    if "input" not in body:
        raise InvalidRequest("'input' is required", param="input")
    return body


def to_chat(body: Mapping[str, Any], history: Sequence[dict[str, Any]] = ()) -> ChatRequest:
    """The chat request a Responses body asks for; `history` is the stored conversation of the
    response it continues (chat messages, without that response's instructions, as OpenAI
    does not carry them over)."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages.extend(history)
    messages.extend(input_messages(body["input"]))
    chat: dict[str, Any] = {"messages": messages, "model": body.get("model") or "auto"}
    for src, dst in (("temperature", "temperature"), ("user", "user"), ("metadata", "metadata"),
                     ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls"),
                     ("stream", "stream"), ("max_output_tokens", "max_tokens")):
        if body.get(src) is not None:
            chat[dst] = body[src]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    fmt = _format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    effort = _effort(body.get("reasoning"))
    if effort is not None:
        chat["reasoning_effort"] = effort  # the providers pass it where the model takes it
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    try:
        return ChatRequest.from_dict(chat)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message.replace("'max_tokens'", "'max_output_tokens'"),
                             param=_param(exc.param)) from None


def _param(param: str | None) -> str | None:
    if param is None:
        return None
    return {"max_tokens": "max_output_tokens", "response_format": "text.format"}.get(
        param, "input" if param.startswith("messages") else param)


def input_messages(value: Any) -> list[dict[str, Any]]:
    """`input` (a string, or a list of items) as chat messages. Consecutive function calls
    become one assistant message with their tool calls, as chat completions expects."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a string or a non-empty list of items",
                             param="input")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, i))
        elif kind == "function_call":
            call = {"id": _text_field(item, "call_id", i), "type": "function", "function": {
                "name": _text_field(item, "name", i),
                "arguments": _text_field(item, "arguments", i)}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = _parts_text(output, i)
            messages.append({"role": "tool", "tool_call_id": _text_field(item, "call_id", i),
                             "content": output})
        elif kind == "reasoning":
            continue  # a model's own reasoning summary: nothing a chat model takes back
        else:
            raise InvalidRequest(f"input[{i}].type {kind!r} is not supported (message, "
                                 "function_call, function_call_output)",
                                 param=f"input[{i}].type")
    return messages


def _message(item: Mapping[str, Any], i: int) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(f"input[{i}].role must be one of user, assistant, system, "
                             f"developer; got {role!r}", param=f"input[{i}].role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"input[{i}].content must be a string or a list of parts",
                             param=f"input[{i}].content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in _INPUT_PARTS:
            parts.append({"type": "text", "text": str(part.get("text", part.get("refusal", "")))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise InvalidRequest("an input_image needs an 'image_url' (a URL or a data URL)",
                                     param=f"input[{i}].content[{j}].image_url")
            parts.append({"type": "image_url",
                          "image_url": {"url": url, "detail": part.get("detail", "auto")}})
        else:
            raise InvalidRequest(
                f"input[{i}].content[{j}].type {kind!r} is not supported (input_text, "
                "input_image, output_text)", param=f"input[{i}].content[{j}].type")
    if role == "assistant" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts
                                                 if p["type"] == "text")}
    return {"role": role, "content": parts}


def _parts_text(value: Any, i: int) -> str:
    if isinstance(value, list):
        return "".join(str(p.get("text", "")) for p in value if isinstance(p, Mapping))
    raise InvalidRequest(f"input[{i}].output must be a string", param=f"input[{i}].output")


def _text_field(item: Mapping[str, Any], key: str, i: int) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"input[{i}].{key} must be a string", param=f"input[{i}].{key}")
    return value


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list", param="tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else None
            raise InvalidRequest(f"tools[{i}]: only function tools are supported; got type "
                                 f"{kind!r}", param=f"tools[{i}].type")
        if not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools[{i}] needs a 'name'", param=f"tools[{i}].name")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                    if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise InvalidRequest("'tool_choice' must be auto, none, required or a function",
                         param="tool_choice")


def _format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping):
        raise InvalidRequest("'text.format' must be an object", param="text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind != "json_schema":
        raise InvalidRequest(f"text.format.type must be text, json_object or json_schema; "
                             f"got {kind!r}", param="text.format.type")
    spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    return {"type": "json_schema", "json_schema": spec}


def _effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, Mapping):
        raise InvalidRequest("'reasoning' must be an object", param="reasoning")
    effort = reasoning.get("effort")
    return str(effort) if effort is not None else None


# -- out -----------------------------------------------------------------------------------------


def new_response_id() -> str:
    return new_id("resp").replace("-", "_")


def output_items(response: ChatResponse) -> list[dict[str, Any]]:
    """The answer as Responses output items: a message with its text, then each tool call."""
    items: list[dict[str, Any]] = []
    text = response.text
    if text or not response.tool_calls:
        items.append(message_item(text, "completed"))
    for call in response.tool_calls or ():
        items.append(function_item(call, "completed"))
    return items


def message_item(text: str, status: str, item_id: str | None = None) -> dict[str, Any]:
    content = [text_part(text)] if status == "completed" else []
    return {"type": "message", "id": item_id or new_id("msg").replace("-", "_"),
            "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_item(call: Mapping[str, Any], status: str,
                  item_id: str | None = None) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "function_call", "id": item_id or new_id("fc").replace("-", "_"),
            "call_id": call.get("id") or new_id("call"), "name": function.get("name", ""),
            "arguments": function.get("arguments") or "", "status": status}


def usage_of(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens}


def response_object(
    body: Mapping[str, Any], response_id: str, model: str, *, status: str,
    output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
    finish_reason: str | None = None, created_at: int | None = None,
) -> dict[str, Any]:
    """A `response` object, every field the SDK's model declares written (echoing the
    request's settings, as OpenAI does)."""
    incomplete = {"reason": "max_output_tokens"} if finish_reason == "length" else None
    return {
        "id": response_id, "object": "response", "created_at": created_at or int(time.time()),
        "status": "incomplete" if incomplete and status == "completed" else status,
        "error": None, "incomplete_details": incomplete,
        "instructions": body.get("instructions"), "model": model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "max_output_tokens": body.get("max_output_tokens"),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning"), "store": bool(body.get("store")),
        "text": body.get("text") or {"format": {"type": "text"}}, "truncation": "disabled",
        "metadata": body.get("metadata") or {}, "user": body.get("user"), "usage": usage,
    }


def turn_history(
    chat: ChatRequest, response: ChatResponse, *, instructions: bool
) -> list[dict[str, Any]]:
    """The conversation a stored response continues from: the request's turns (less its
    `instructions`, the leading system message, which OpenAI does not carry over) and the
    answer's."""
    turns = [_plain(m) for m in chat.messages]
    if instructions:
        turns = turns[1:]
    answer: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        answer["tool_calls"] = [{"id": c.get("id"), "type": "function",
                                 "function": c.get("function")} for c in response.tool_calls]
    return [*turns, answer]


def _plain(message: Message) -> dict[str, Any]:
    keep = ("role", "content", "name", "tool_calls", "tool_call_id")
    return {k: getattr(message, k) for k in keep if getattr(message, k) is not None}
