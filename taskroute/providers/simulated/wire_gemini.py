"""The simulated upstream speaking Gemini's `generateContent` wire format. SIMULATED.

The model and the method come from the path (`/v1beta/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse`), not the body. A prompt containing `BLOCKED_WORD` is blocked
as the real API blocks one (`promptFeedback.blockReason: SAFETY`, no candidates), and a refusal
(the `refuse` behaviour) ends with `finishReason: SAFETY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from taskroute.providers.simulated.answers import REFUSAL, Answer, Ask, Tool
from taskroute.providers.simulated.wire_openai import BadRequest, Frame

_encode = msgspec.json.encode
CACHE_MIN_TOKENS = 1024         # implicit caching of a shared prefix, as Gemini 2.5 does
REPORTS_CACHE_WRITES = False
BLOCKED_WORD = "[blocked]"
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
__all__ = ["CACHE_MIN_TOKENS", "REPORTS_CACHE_WRITES", "body", "cache_prefix", "error",
           "frames", "parse"]


def _field(data: dict[str, Any], name: str) -> Any:
    """A field by its JSON name or its proto name (`parametersJsonSchema` or
    `parameters_json_schema`): Google's JSON parser takes both, and its SDK sends some of each."""
    if name in data:
        return data[name]
    return data.get(re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name))


def _text(parts: Any) -> str:
    return "\n".join(str(p["text"]) for p in parts or []
                     if isinstance(p, dict) and isinstance(p.get("text"), str))


def parse(body: dict[str, Any]) -> Ask:
    """`body` with the path's model written into it as `model` by the server."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    for turn in contents:
        if not isinstance(turn, dict) or turn.get("role", "user") not in ("user", "model"):
            raise BadRequest("Please use a valid role: user, model.")
    system = _text((_field(body, "systemInstruction") or {}).get("parts"))
    users = [t for t in contents if t.get("role", "user") == "user"
             and any("text" in p for p in t.get("parts") or [])]
    last_parts = contents[-1].get("parts") or []
    declarations = [d for tool in body.get("tools") or []
                    for d in _field(tool, "functionDeclarations") or []]
    mode = _field(_field(body, "toolConfig") or {}, "functionCallingConfig") or {}
    allowed = _field(mode, "allowedFunctionNames") or []
    choice = {"AUTO": "auto", "NONE": "none", "ANY": "required"}.get(mode.get("mode", "AUTO"),
                                                                      "auto")
    config = _field(body, "generationConfig") or {}
    schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
    return Ask(
        model=str(body["model"]),
        prompt=_text(users[-1].get("parts")) if users else "",
        input_text=system + "\n" + "\n".join(_text(t.get("parts")) for t in contents),
        tools=tuple(Tool(d["name"], _field(d, "parametersJsonSchema") or d.get("parameters") or {})
                    for d in declarations if isinstance(d, dict) and "name" in d),
        tool_choice=allowed[0] if allowed and choice == "required" else choice,
        after_tool_result=any(_field(p, "functionResponse") for p in last_parts),
        json_kind=("json_schema" if schema else "json_object"
                   if _field(config, "responseMimeType") == "application/json" else "text"),
        schema=schema,
        max_tokens=_field(config, "maxOutputTokens"),
        stop=tuple(_field(config, "stopSequences") or ()),
    )


def cache_prefix(body: dict[str, Any]) -> list[Any]:
    """Every turn before the last, with the system instruction and tools (implicit caching)."""
    contents = body.get("contents") or []
    return [body.get("systemInstruction"), body.get("tools"), *contents[:-1]]


def _blocked(ask: Ask) -> bool:
    return BLOCKED_WORD in ask.prompt


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    usage = {"promptTokenCount": answer.prompt_tokens, "candidatesTokenCount": output_tokens,
             "totalTokenCount": answer.prompt_tokens + output_tokens + answer.reasoning_tokens}
    if answer.cache_read_tokens:
        usage["cachedContentTokenCount"] = answer.cache_read_tokens
    if answer.reasoning_tokens:
        usage["thoughtsTokenCount"] = answer.reasoning_tokens
    return usage


def _finish(answer: Answer) -> str:
    return "SAFETY" if answer.text == REFUSAL else _FINISH[answer.finish]


def _call_parts(answer: Answer) -> list[dict[str, Any]]:
    # Gemini's own calls carry no id in most models; the adapter makes one up.
    return [{"functionCall": {"name": c.name, "args": msgspec.json.decode(c.arguments)}}
            for c in answer.tool_calls]


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def body(ask: Ask, answer: Answer, response_id: str) -> dict[str, Any]:
    if _blocked(ask):
        return {"promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": _usage(answer, 0), "modelVersion": ask.model,
                "responseId": response_id}
    parts: list[dict[str, Any]] = [{"text": answer.text}] if answer.tokens else []
    parts += _call_parts(answer)
    output = answer.completion_tokens - answer.reasoning_tokens
    return {"candidates": [_candidate(parts, _finish(answer))],
            "usageMetadata": _usage(answer, output), "modelVersion": ask.model,
            "responseId": response_id}


def frames(ask: Ask, answer: Answer, response_id: str, include_usage: bool) -> Iterator[Frame]:
    def event(data: dict[str, Any]) -> bytes:
        return b"data: " + _encode({**data, "modelVersion": ask.model,
                                    "responseId": response_id}) + b"\r\n\r\n"

    if _blocked(ask):
        yield event(body(ask, answer, response_id)), False
        return
    for sent, token in enumerate(answer.tokens, 1):
        yield event({"candidates": [_candidate([{"text": token}], None)],
                     "usageMetadata": _usage(answer, sent)}), True
    output = answer.completion_tokens - answer.reasoning_tokens
    yield event({"candidates": [_candidate(_call_parts(answer), _finish(answer))],
                 "usageMetadata": _usage(answer, output)}), False


_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}


def error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "status": _STATUS.get(status, "UNKNOWN")}}
