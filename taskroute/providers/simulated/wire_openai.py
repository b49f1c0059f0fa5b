"""The simulated upstream speaking OpenAI's chat-completions wire format. SIMULATED."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec

from taskroute.providers.simulated.answers import Answer, Ask, Tool
from taskroute.providers.simulated.cache import OPENAI_MIN_TOKENS as CACHE_MIN_TOKENS
from taskroute.providers.simulated.cache import openai_prefix as cache_prefix

Frame = tuple[bytes, bool]  # (encoded SSE event, carries a token: pace it)
_encode = msgspec.json.encode
REPORTS_CACHE_WRITES = False    # OpenAI caches on its own and reports only the reads
__all__ = ["CACHE_MIN_TOKENS", "REPORTS_CACHE_WRITES", "BadRequest", "Frame", "body",
           "cache_prefix", "error", "frames", "parse"]


class BadRequest(Exception):
    """The simulated upstream rejects the request with 400, as the real API would."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def parse(body: dict[str, Any]) -> Ask:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not isinstance(messages, list) or not messages:
        raise BadRequest("'model' and a non-empty 'messages' are required")
    prompt = next((_text(m.get("content")) for m in reversed(messages)
                   if isinstance(m, dict) and m.get("role") == "user"), "")
    tools = tuple(
        Tool(t["function"]["name"], t["function"].get("parameters") or {})
        for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t
    )
    choice = body.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name", "required")
    fmt = body.get("response_format") or {}
    stop = body.get("stop") or ()
    return Ask(
        model=model,
        prompt=prompt,
        input_text="\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict)),
        tools=tools,
        tool_choice=str(choice),
        after_tool_result=isinstance(messages[-1], dict) and messages[-1].get("role") == "tool",
        tool_rounds=sum(1 for m in messages if isinstance(m, dict) and m.get("tool_calls")),
        parallel_tools=body.get("parallel_tool_calls") is not False,
        json_kind=str(fmt.get("type", "text")),
        schema=(fmt.get("json_schema") or {}).get("schema"),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        logprobs=bool(body.get("logprobs")),
    )


def _usage(answer: Answer) -> dict[str, Any]:
    prompt, completion = answer.prompt_tokens, answer.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": answer.cache_read_tokens,
                                      "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": answer.reasoning_tokens,
                                          "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in answer.tool_calls
    ]


def body(ask: Ask, answer: Answer, response_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None,
                               "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer)
    logprobs = {"content": answer.token_logprobs(), "refusal": None} if answer.logprobs else None
    return {
        "id": response_id, "object": "chat.completion", "created": int(time.time()),
        "model": ask.model, "system_fingerprint": "fp_simulated",
        "choices": [{"index": 0, "message": message, "logprobs": logprobs,
                     "finish_reason": answer.finish}],
        "usage": _usage(answer),
    }


def frames(ask: Ask, answer: Answer, response_id: str, include_usage: bool) -> Iterator[Frame]:
    base = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": ask.model, "system_fingerprint": "fp_simulated"}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None,
              logprobs: Any = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return b"data: " + _encode({**base, "choices": [choice]}) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""}), False
    entries = answer.token_logprobs() if answer.logprobs else None
    for i, token in enumerate(answer.tokens):
        logprobs = {"content": [entries[i]], "refusal": None} if entries else None
        yield chunk({"content": token}, logprobs=logprobs), True
    for index, call in enumerate(answer.tool_calls):
        head = {"index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}
        yield chunk({"tool_calls": [head]}), False
        for start in range(0, len(call.arguments), 16):
            piece = call.arguments[start:start + 16]
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), True
    yield chunk({}, answer.finish), False
    if include_usage:
        last = {**base, "choices": [], "usage": _usage(answer)}
        yield b"data: " + _encode(last) + b"\n\n", False
    yield b"data: [DONE]\n\n", False


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def error(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def context_error(tokens: int, window: int) -> dict[str, Any]:
    """OpenAI's answer to a request longer than the model's context window (HTTP 400)."""
    return {"error": {
        "message": f"This model's maximum context length is {window} tokens. However, your "
                   f"messages resulted in {tokens} tokens. Please reduce the length of the "
                   "messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
