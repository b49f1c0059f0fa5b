"""Conversions between OpenAI's chat-completions shapes and Gemini's `generateContent`.

The request: system and developer turns become `systemInstruction`; assistant turns are
`model` turns; tool results are `functionResponse` parts (named by the call they answer, which
Gemini needs and OpenAI's tool message does not carry); consecutive turns of one role are
merged, since Gemini wants user and model turns to alternate. Tools are `functionDeclarations`
with their JSON Schema as `parametersJsonSchema`, and `response_format` becomes
`responseMimeType: application/json` with `responseJsonSchema`, so neither is squeezed into
Gemini's older OpenAPI subset.

Gemini may give a function call no id (the id is then `call_<hash>`), and a thinking model
signs its calls (`thoughtSignature`), which must come back with them on the next turn: the
signature travels in the OpenAI tool call's id, after `SIGNATURE_MARK`, since an OpenAI
client sends the id back as it got it. Ids are not sent to Gemini: a call made by another
provider (failover) has an id Gemini never issued, and Gemini pairs responses with calls by
name and order.

A prompt Gemini blocks (`promptFeedback.blockReason`) or an answer it stops for safety,
recitation or a blocklist ends with `finish_reason: content_filter` and the reason in the
message's `refusal`, which the `refusal` gate reads.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from taskroute.providers.turns import add_turn
from taskroute.request import ChatRequest, Message
from taskroute.response import ChatResponse, Choice, ResponseMessage, Usage, new_id

SIGNATURE_MARK = "__sig__"
BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                     "IMAGE_SAFETY", "LANGUAGE"})
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "FINISH_REASON_UNSPECIFIED": "stop",
                  "OTHER": "stop", "MALFORMED_FUNCTION_CALL": "stop",
                  **dict.fromkeys(BLOCKED, "content_filter")}
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
Part = dict[str, Any]


# -- OpenAI → Gemini (the adapter's request) ----------------------------------------------------

def to_gemini_request(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = [{"text": m.text} for m in request.messages
              if m.role in ("system", "developer") and m.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [_declaration(t["function"]) for t in request.tools
                        if t.get("type", "function") == "function" and "function" in t]
        if declarations:
            body["tools"] = [{"functionDeclarations": declarations}]
            config = _tool_config(request.tool_choice)
            if config:
                body["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(request)
    if generation:
        body["generationConfig"] = generation
    return body


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    extra = request.extra
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    for ours, theirs in (("top_p", "topP"), ("top_k", "topK"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"),
                         ("frequency_penalty", "frequencyPenalty")):
        if extra.get(ours) is not None:
            config[theirs] = extra[ours]
    stop = extra.get("stop") or extra.get("stop_sequences")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.format_kind != "text":
        config["responseMimeType"] = "application/json"
        if request.json_schema is not None:
            config["responseJsonSchema"] = request.json_schema
    return config


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"mode": TOOL_MODES.get(choice, "AUTO")}
    name = (choice.get("function") or {}).get("name")
    return {"mode": "ANY", "allowedFunctionNames": [name]} if name else None


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    names = {call.get("id"): (call.get("function") or {}).get("name", "")
             for m in messages for call in m.tool_calls or []}
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role in ("tool", "function"):
            role, parts = "user", [_function_response(message, names)]
        elif message.role == "assistant":
            role = "model"
            parts = [{"text": message.text}] if message.text else []
            parts += [_function_call(call) for call in message.tool_calls or []]
        else:
            role, parts = "user", _user_parts(message.content)
        if not parts:
            continue
        add_turn(contents, role, parts, "parts")
    return contents


def _user_parts(content: str | list[dict[str, Any]] | None) -> list[Part]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Part] = []
    for part in content or []:
        if part.get("type") == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            parts.append(_image(part.get("image_url") or {}))
    return parts


def _image(image: dict[str, Any] | str) -> Part:
    url = image if isinstance(image, str) else str(image.get("url", ""))
    if url.startswith("data:") and ";base64," in url:
        mime, _, data = url[5:].partition(";base64,")
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"fileUri": url}}


def _function_call(call: dict[str, Any]) -> Part:
    function = call.get("function") or {}
    signature = signature_of(str(call.get("id", "")))
    try:
        args = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        args = {}
    part: Part = {"functionCall": {"name": function.get("name", ""),
                                   "args": args if isinstance(args, dict) else {}}}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: Message, names: dict[Any, str]) -> Part:
    text = message.text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    response = value if isinstance(value, dict) else {"result": text}
    name = names.get(message.tool_call_id) or message.name or ""
    return {"functionResponse": {"name": name, "response": response}}


def signature_of(call_id: str) -> str | None:
    """The thought signature an OpenAI tool call id carries, if any."""
    return call_id.partition(SIGNATURE_MARK)[2] or None


def call_id(call: dict[str, Any], part: Part, salt: str) -> str:
    """The OpenAI id of a Gemini function call: its own id, or a stable one made up."""
    head = call.get("id") or "call_" + hashlib.sha256(
        f"{salt}|{call.get('name')}|{json.dumps(call.get('args'), sort_keys=True)}".encode()
    ).hexdigest()[:24]
    signature = part.get("thoughtSignature")
    return f"{head}{SIGNATURE_MARK}{signature}" if signature else str(head)


# -- Gemini → OpenAI (the answer) ---------------------------------------------------------------

def blocked_reason(data: dict[str, Any]) -> str | None:
    """Why Gemini blocked the prompt itself (no candidates then), or None."""
    feedback = data.get("promptFeedback") or {}
    reason = feedback.get("blockReason")
    return str(reason) if reason else None


def finish_reason(reason: str | None, *, has_calls: bool) -> str | None:
    if reason is None:
        return None
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def refusal_text(reason: str, where: str) -> str:
    return f"Gemini blocked the {where} ({reason})"


def usage(metadata: dict[str, Any] | None) -> Usage | None:
    """Gemini's `usageMetadata` in OpenAI's shape: `promptTokenCount` already counts the cached
    tokens; thinking tokens (`thoughtsTokenCount`) are outside `candidatesTokenCount` there and
    inside `completion_tokens` here."""
    if not metadata:
        return None
    prompt = int(metadata.get("promptTokenCount", 0)) + int(
        metadata.get("toolUsePromptTokenCount", 0))
    thoughts = int(metadata.get("thoughtsTokenCount", 0))
    completion = int(metadata.get("candidatesTokenCount", 0)) + thoughts
    out = Usage(prompt_tokens=prompt, completion_tokens=completion,
                total_tokens=prompt + completion,
                prompt_tokens_details={"cached_tokens":
                                       int(metadata.get("cachedContentTokenCount", 0))})
    if thoughts:
        out.completion_tokens_details = {"reasoning_tokens": thoughts}
    return out


def split_parts(parts: list[Part], salt: str) -> tuple[str, str, list[dict[str, Any]]]:
    """(text, thought text, OpenAI tool calls) of a candidate's parts."""
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if "functionCall" in part:
            call = part["functionCall"]
            calls.append({"id": call_id(call, part, f"{salt}|{len(calls)}"), "type": "function",
                          "function": {"name": call.get("name", ""),
                                       "arguments": json.dumps(call.get("args") or {})}})
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    return "".join(text), "".join(thoughts), calls


def from_gemini_response(data: dict[str, Any], model: str) -> ChatResponse:
    blocked = blocked_reason(data)
    candidates = data.get("candidates") or []
    if blocked or not candidates:
        message = ResponseMessage(refusal=refusal_text(blocked or "no candidates", "prompt"))
        return ChatResponse(model=str(data.get("modelVersion") or model),
                            choices=[Choice(message=message, finish_reason="content_filter")],
                            usage=usage(data.get("usageMetadata")),
                            id=str(data.get("responseId") or new_id("chatcmpl")))
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    salt = str(data.get("responseId") or "")
    text, thoughts, calls = split_parts(parts, salt)
    reason = candidate.get("finishReason")
    finish = finish_reason(reason or "STOP", has_calls=bool(calls))
    message = ResponseMessage(content=text or None, tool_calls=calls or None)
    if thoughts:
        message.reasoning_content = thoughts
    if finish == "content_filter":
        message.refusal = refusal_text(str(reason), "answer")
    return ChatResponse(model=str(data.get("modelVersion") or model),
                        choices=[Choice(message=message, finish_reason=finish)],
                        usage=usage(data.get("usageMetadata")),
                        id=str(data.get("responseId") or new_id("chatcmpl")))


class OpenAIChunks:
    """Gemini's streamed `GenerateContentResponse`s as OpenAI chunk dicts. Each event carries
    the parts new since the last; a function call comes whole in one; usage comes cumulative,
    and the last one counts. `finish()` adds the usage chunk after the finishing one."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("chatcmpl")
        self.finished = False
        self._calls = 0
        self._usage: Usage | None = None
        self._started = False

    def feed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if data.get("usageMetadata"):
            self._usage = usage(data["usageMetadata"])
        blocked = blocked_reason(data)
        if blocked:
            self.finished = True
            return [self._chunk({"refusal": refusal_text(blocked, "prompt")}, "content_filter")]
        out: list[dict[str, Any]] = []
        for candidate in (data.get("candidates") or [])[:1]:
            parts = (candidate.get("content") or {}).get("parts") or []
            text, thoughts, calls = split_parts(parts, f"{self.id}|{self._calls}")
            delta: dict[str, Any] = {}
            if not self._started:
                delta["role"] = "assistant"
                self._started = True
            if thoughts:
                delta["reasoning_content"] = thoughts
            if text:
                delta["content"] = text
            if calls:
                delta["tool_calls"] = [{"index": self._calls + i, **c}
                                       for i, c in enumerate(calls)]
                self._calls += len(calls)
            reason = candidate.get("finishReason")
            finish = finish_reason(reason, has_calls=self._calls > 0)
            if finish == "content_filter":
                delta["refusal"] = refusal_text(str(reason), "answer")
            if delta or finish:
                out.append(self._chunk(delta, finish))
            self.finished = self.finished or finish is not None
        return out

    def finish(self) -> list[dict[str, Any]]:
        if self._usage is None:
            return []
        last = self._chunk({}, None)
        last["choices"] = []
        last["usage"] = self._usage.to_dict()
        return [last]

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
