"""The simulated upstream speaking Bedrock's Converse wire format. SIMULATED.

The model and whether to stream come from the path (`/model/{id}/converse` or
`/converse-stream`); streams are AWS event-stream messages (`eventstream.encode`), errors
name their kind in `x-amzn-ErrorType` as Bedrock does. With credentials, the server checks
each request's SigV4 signature (`check_signature`), so an unsigned or wrongly signed call is
refused with 403 as Bedrock refuses it. A refusal (the `refuse` behaviour) stops with
`guardrail_intervened`, as a Bedrock guardrail does.
"""

from __future__ import annotations

import hmac
import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from taskroute.exceptions import Secret
from taskroute.providers import eventstream
from taskroute.providers.anthropic_format import JSON_INSTRUCTION, SCHEMA_INSTRUCTION
from taskroute.providers.sigv4 import Credentials, sign
from taskroute.providers.simulated.answers import REFUSAL, Answer, Ask, Tool
from taskroute.providers.simulated.wire_openai import BadRequest, Frame

_encode = msgspec.json.encode
CACHE_MIN_TOKENS = 1           # what a request marks with a cachePoint is cached
REPORTS_CACHE_WRITES = True
STREAM_TYPE = "application/vnd.amazon.eventstream"
MALFORMED_EVENT = eventstream.event("contentBlockDelta", b"{}")[:-4] + b"\0\0\0\0"  # bad CRC
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")
__all__ = ["CACHE_MIN_TOKENS", "MALFORMED_EVENT", "REPORTS_CACHE_WRITES", "STREAM_TYPE",
           "body", "cache_prefix", "check_signature", "error", "error_headers", "frames",
           "parse"]


def _text(blocks: Any) -> str:
    return "\n".join(str(b["text"]) for b in blocks or []
                     if isinstance(b, dict) and isinstance(b.get("text"), str))


def parse(body: dict[str, Any]) -> Ask:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("1 validation error detected: Value at 'messages' failed to satisfy "
                         "constraint: Member must have length greater than or equal to 1")
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if roles[0] != "user" or any(a == b for a, b in itertools.pairwise(roles)):
        raise BadRequest("A conversation must start with a user message and alternate "
                         "user and assistant turns.")
    system = _text(body.get("system"))
    users = [m for m in messages if m.get("role") == "user"
             and any("text" in b for b in m.get("content") or [])]
    last = messages[-1].get("content") or []
    tool_config = body.get("toolConfig") or {}
    choice = tool_config.get("toolChoice") or {"auto": {}}
    choice_name = ("required" if "any" in choice else
                   (choice.get("tool") or {}).get("name", "auto"))
    schema = None
    for line in system.splitlines():
        if line.startswith(SCHEMA_INSTRUCTION):
            schema = msgspec.json.decode(line[len(SCHEMA_INSTRUCTION):])
    config = body.get("inferenceConfig") or {}
    return Ask(
        model=str(body["model"]),
        prompt=_text(users[-1].get("content")) if users else "",
        input_text=system + "\n" + "\n".join(_text(m.get("content")) for m in messages),
        tools=tuple(Tool(t["toolSpec"]["name"], (t["toolSpec"].get("inputSchema") or {})
                         .get("json") or {})
                    for t in tool_config.get("tools") or [] if "toolSpec" in t),
        tool_choice=choice_name,
        after_tool_result=any("toolResult" in b for b in last),
        json_kind="json_schema" if schema else "json_object" if JSON_INSTRUCTION in system
        else "text",
        schema=schema,
        max_tokens=config.get("maxTokens"),
        stop=tuple(config.get("stopSequences") or ()),
    )


def cache_prefix(body: dict[str, Any]) -> list[Any]:
    """Everything up to the last `cachePoint` block (system, then messages)."""
    parts: list[Any] = list(body.get("system") or [])
    for turn in body.get("messages") or []:
        parts += list(turn.get("content") or []) if isinstance(turn, dict) else []
    marked = [i for i, part in enumerate(parts) if isinstance(part, dict) and "cachePoint" in part]
    return parts[:marked[-1] + 1] if marked else []


def _stop(answer: Answer) -> str:
    if answer.text == REFUSAL:
        return "guardrail_intervened"
    return "stop_sequence" if answer.stop_sequence else _STOP[answer.finish]


def _usage(answer: Answer) -> dict[str, Any]:
    read, write = answer.cache_read_tokens, answer.cache_write_tokens
    plain = answer.prompt_tokens - read - write
    out = answer.completion_tokens
    usage = {"inputTokens": plain, "outputTokens": out, "totalTokens": plain + out + read + write}
    if read or write:
        usage.update(cacheReadInputTokens=read, cacheWriteInputTokens=write)
    return usage


def body(ask: Ask, answer: Answer, response_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": answer.text}] if answer.tokens else []
    content += [{"toolUse": {"toolUseId": "tooluse_" + c.id[5:], "name": c.name,
                             "input": msgspec.json.decode(c.arguments)}}
                for c in answer.tool_calls]
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _stop(answer), "usage": _usage(answer), "metrics": {"latencyMs": 1}}


def frames(ask: Ask, answer: Answer, response_id: str, include_usage: bool) -> Iterator[Frame]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return eventstream.event(name, _encode({**data, "p": "abcdefghij"}))  # Bedrock pads

    yield event("messageStart", {"role": "assistant"}), False
    index = 0
    if answer.tokens:
        for token in answer.tokens:
            yield event("contentBlockDelta", {"contentBlockIndex": 0,
                                              "delta": {"text": token}}), True
        yield event("contentBlockStop", {"contentBlockIndex": 0}), False
        index = 1
    for offset, call in enumerate(answer.tool_calls):
        at = index + offset
        yield event("contentBlockStart", {"contentBlockIndex": at, "start": {"toolUse": {
            "toolUseId": "tooluse_" + call.id[5:], "name": call.name}}}), False
        for start in range(0, len(call.arguments), 16):
            piece = call.arguments[start:start + 16]
            yield event("contentBlockDelta", {"contentBlockIndex": at,
                                              "delta": {"toolUse": {"input": piece}}}), True
        yield event("contentBlockStop", {"contentBlockIndex": at}), False
    yield event("messageStop", {"stopReason": _stop(answer)}), False
    yield event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 1}}), False


_ERRORS = {400: "ValidationException", 403: "AccessDeniedException",
           404: "ResourceNotFoundException", 408: "ModelTimeoutException",
           424: "ModelErrorException", 429: "ThrottlingException",
           500: "InternalServerException", 503: "ServiceUnavailableException"}


def error(status: int, message: str) -> dict[str, Any]:
    return {"message": message}


def error_headers(status: int) -> dict[str, str]:
    kind = _ERRORS.get(status, "InternalServerException")
    return {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


def check_signature(request: web.Request, payload: bytes, key_id: str, secret: str) -> str | None:
    """Why the request's SigV4 signature is not good for (`key_id`, `secret`), or None."""
    found = _AUTH.match(request.headers.get("Authorization", ""))
    if found is None:
        return "Missing Authentication Token"
    access, date, region, service, names, signature = found.groups()
    if access != key_id:
        return "The security token included in the request is invalid."
    stamp = request.headers.get("X-Amz-Date", "")
    if not stamp.startswith(date) or service != "bedrock":
        return "Credential should be scoped to a valid date and the bedrock service."
    signed = {name: request.headers.get(name, "") for name in names.split(";")}
    token = request.headers.get("X-Amz-Security-Token")
    url = f"http://{request.host}{request.raw_path}"
    expected = sign(request.method, url, {k: v for k, v in signed.items()
                                          if k not in ("x-amz-date", "x-amz-security-token")},
                    payload, credentials=Credentials(key_id, Secret(secret),
                                                     Secret(token) if token else None),
                    region=region, service=service,
                    now=datetime.strptime(stamp, "%Y%m%dT%H%M%S%z"))
    theirs = expected["Authorization"].rsplit("Signature=", 1)[1]
    if not hmac.compare_digest(theirs, signature):
        return ("The request signature we calculated does not match the signature you "
                "provided.")
    return None
