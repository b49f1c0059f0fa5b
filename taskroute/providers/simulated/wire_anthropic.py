"""The simulated upstream speaking Anthropic's Messages wire format. SIMULATED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec

from taskroute.providers.anthropic_format import JSON_INSTRUCTION, SCHEMA_INSTRUCTION
from taskroute.providers.simulated.answers import Answer, Ask, Tool
from taskroute.providers.simulated.cache import anthropic_prefix as cache_prefix
from taskroute.providers.simulated.wire_openai import BadRequest, Frame

_encode = msgspec.json.encode
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
CACHE_MIN_TOKENS = 1            # what a request marks with cache_control is cached
REPORTS_CACHE_WRITES = True
__all__ = ["CACHE_MIN_TOKENS", "REPORTS_CACHE_WRITES", "body", "cache_prefix", "error",
           "frames", "parse"]


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _text(content: Any) -> str:
    return "\n".join(str(b.get("text", "")) for b in _blocks(content) if b.get("type") == "text")


def parse(body: dict[str, Any]) -> Ask:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not isinstance(messages, list) or not messages:
        raise BadRequest("'model' and a non-empty 'messages' are required")
    if not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: Field required")
    system = _text(body.get("system"))
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    after_tool = any(b.get("type") == "tool_result" for b in _blocks(last.get("content")))
    choice = body.get("tool_choice") or {"type": "auto"}
    choice_name = {"auto": "auto", "any": "required", "none": "none"}.get(
        choice.get("type", "auto"), choice.get("name", "auto"))
    schema = None
    for line in system.splitlines():
        if line.startswith(SCHEMA_INSTRUCTION):
            schema = json.loads(line[len(SCHEMA_INSTRUCTION):])
    return Ask(
        model=model,
        prompt=_text(users[-1].get("content")) if users else "",
        input_text=system + "\n" + "\n".join(_text(m.get("content")) for m in messages),
        tools=tuple(Tool(t["name"], t.get("input_schema") or {})
                    for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t),
        tool_choice=choice_name,
        after_tool_result=after_tool,
        tool_rounds=sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant"
                        and any(b.get("type") == "tool_use" for b in _blocks(m.get("content")))),
        parallel_tools=not choice.get("disable_parallel_tool_use"),
        json_kind="json_schema" if schema else "json_object" if JSON_INSTRUCTION in system
        else "text",
        schema=schema,
        max_tokens=body["max_tokens"],
        stop=tuple(body.get("stop_sequences") or ()),
        thinking=(body.get("thinking") or {}).get("type") == "enabled",
    )


THOUGHT = "Let me think this through."   # SIMULATED thinking, signed with a fixed signature
SIGNATURE = "sig-simulated"


def _content(ask: Ask, answer: Answer) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if ask.thinking:
        content.append({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    if answer.tokens:
        content.append({"type": "text", "text": answer.text})
    content.extend(
        {"type": "tool_use", "id": "toolu_" + c.id[5:], "name": c.name,
         "input": json.loads(c.arguments)}
        for c in answer.tool_calls
    )
    return content


def _stop_reason(answer: Answer) -> str:
    return "stop_sequence" if answer.stop_sequence else _STOP_REASONS[answer.finish]


def body(ask: Ask, answer: Answer, response_id: str) -> dict[str, Any]:
    return {
        "id": response_id.replace("chatcmpl-", "msg_"), "type": "message", "role": "assistant",
        "model": ask.model, "content": _content(ask, answer), "stop_reason": _stop_reason(answer),
        "stop_sequence": answer.stop_sequence,
        "usage": _usage(answer, answer.completion_tokens),
    }


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    read, write = answer.cache_read_tokens, answer.cache_write_tokens
    return {"input_tokens": answer.prompt_tokens - read - write,
            "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "output_tokens": output_tokens}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **data}) + b"\n\n"


def frames(ask: Ask, answer: Answer, response_id: str, include_usage: bool) -> Iterator[Frame]:
    message = {**body(ask, answer, response_id), "content": [], "stop_reason": None,
               "stop_sequence": None}
    message["usage"] = _usage(answer, 1)
    yield _event("message_start", {"message": message}), False
    index = 0
    if ask.thinking:
        yield _event("content_block_start", {"index": 0, "content_block": {
            "type": "thinking", "thinking": ""}}), False
        for delta in ({"type": "thinking_delta", "thinking": THOUGHT},
                      {"type": "signature_delta", "signature": SIGNATURE}):
            yield _event("content_block_delta", {"index": 0, "delta": delta}), True
        yield _event("content_block_stop", {"index": 0}), False
        index = 1
    if answer.tokens:
        yield _event("content_block_start", {"index": index,
                                             "content_block": {"type": "text", "text": ""}}), False
        yield _event("ping", {}), False
        for token in answer.tokens:
            yield _event("content_block_delta", {
                "index": index, "delta": {"type": "text_delta", "text": token}}), True
        yield _event("content_block_stop", {"index": index}), False
        index += 1
    for offset, call in enumerate(answer.tool_calls):
        block = {"type": "tool_use", "id": "toolu_" + call.id[5:], "name": call.name, "input": {}}
        yield _event("content_block_start", {"index": index + offset,
                                             "content_block": block}), False
        for start in range(0, len(call.arguments), 16):
            delta = {"type": "input_json_delta", "partial_json": call.arguments[start:start + 16]}
            yield _event("content_block_delta", {"index": index + offset, "delta": delta}), True
        yield _event("content_block_stop", {"index": index + offset}), False
    yield _event("message_delta", {
        "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": answer.stop_sequence},
        "usage": {"output_tokens": answer.completion_tokens}}), False
    yield _event("message_stop", {}), False


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                529: "overloaded_error"}


def error(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def context_error(tokens: int, window: int) -> dict[str, Any]:
    """Anthropic's answer to a request longer than the model's context window (HTTP 400)."""
    return {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": f"prompt is too long: {tokens} tokens > {window} maximum"}}
