"""Conversions between OpenAI's chat-completions shapes and Bedrock's Converse API.

The request: system turns become `system` blocks; tool calls are `toolUse` blocks and tool
results `toolResult` blocks in a user turn; consecutive turns of one role are merged, since
Converse wants user and assistant turns to alternate. Tools are `toolConfig.tools[].toolSpec`
with their JSON Schema as `inputSchema.json`. Converse has no JSON mode that every model
takes, so `response_format` is asked in the system prompt, as for Anthropic (the gates check
it). A `cache_control` mark becomes a `cachePoint` block after the part it marks. `top_k`
and `thinking` go to the model as `additionalModelRequestFields`.

The answer: `stopReason` `guardrail_intervened` and `content_filtered` are
`finish_reason: content_filter` with the reason in `refusal`; usage counts cache reads and
writes (`cacheReadInputTokens`, `cacheWriteInputTokens`), which Converse keeps out of
`inputTokens` and OpenAI's `prompt_tokens` counts in.
"""

from __future__ import annotations

import json
from typing import Any

from taskroute.providers.anthropic_format import JSON_INSTRUCTION, SCHEMA_INSTRUCTION
from taskroute.providers.turns import add_turn
from taskroute.request import ChatRequest, Message
from taskroute.response import ChatResponse, Choice, ResponseMessage, Usage, new_id

STOP_REASONS = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                "stop_sequence": "stop", "guardrail_intervened": "content_filter",
                "content_filtered": "content_filter",
                "model_context_window_exceeded": "length"}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}
Block = dict[str, Any]
CACHE_POINT: Block = {"cachePoint": {"type": "default"}}


# -- OpenAI → Converse (the adapter's request) --------------------------------------------------

def to_converse_request(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": _messages(request.messages)}
    system = _system(request)
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = min(request.temperature, 1.0)
    if request.extra.get("top_p") is not None:
        config["topP"] = request.extra["top_p"]
    stop = request.extra.get("stop") or request.extra.get("stop_sequences")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        body["inferenceConfig"] = config
    tools = _tool_config(request)
    if tools:
        body["toolConfig"] = tools
    extra = {k: request.extra[k] for k in ("top_k", "thinking")
             if request.extra.get(k) is not None}
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def _system(request: ChatRequest) -> list[Block]:
    blocks: list[Block] = []
    for message in request.messages:
        if message.role not in ("system", "developer"):
            continue
        for part in _parts(message.content):
            if part.get("type") == "text" and part.get("text"):
                blocks.append({"text": part["text"]})
                if part.get("cache_control"):
                    blocks.append(CACHE_POINT)
    if request.format_kind != "text":
        blocks.append({"text": JSON_INSTRUCTION})
        if request.json_schema is not None:
            blocks.append({"text": SCHEMA_INSTRUCTION + json.dumps(request.json_schema)})
    return blocks


def _parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [p for p in content or [] if isinstance(p, dict)]


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    specs = [t["function"] for t in request.tools or []
             if t.get("type", "function") == "function" and "function" in t]
    if not specs:
        return None
    tools: list[Block] = []
    for spec in specs:
        tool: dict[str, Any] = {"name": spec["name"],
                                "inputSchema": {"json": spec.get("parameters")
                                                or {"type": "object", "properties": {}}}}
        if spec.get("description"):
            tool["description"] = spec["description"]
        tools.append({"toolSpec": tool})
    config: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config   # "none": Converse has no such choice; the tools stay, unforced


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role in ("tool", "function"):
            role, blocks = "user", [_tool_result(message)]
        elif message.role == "assistant":
            role = "assistant"
            blocks = [{"text": message.text}] if message.text else []
            blocks += [_tool_use(call) for call in message.tool_calls or []]
        else:
            role, blocks = "user", _user_blocks(message.content)
        if not blocks:
            continue
        add_turn(turns, role, blocks, "content")
    return turns


def _user_blocks(content: str | list[dict[str, Any]] | None) -> list[Block]:
    blocks: list[Block] = []
    for part in _parts(content):
        if part.get("type") == "text" and part.get("text"):
            blocks.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            image = _image(part.get("image_url") or {})
            if image is not None:
                blocks.append(image)
        if part.get("cache_control") and blocks:
            blocks.append(CACHE_POINT)
    return blocks


def _image(image: dict[str, Any] | str) -> Block | None:
    url = image if isinstance(image, str) else str(image.get("url", ""))
    mime, _, data = url.removeprefix("data:").partition(";base64,")
    if not url.startswith("data:") or mime not in IMAGE_FORMATS:
        return None   # Converse takes image bytes only (or S3); a web URL is not fetched here
    return {"image": {"format": IMAGE_FORMATS[mime], "source": {"bytes": data}}}


def _tool_use(call: dict[str, Any]) -> Block:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        arguments = {}
    return {"toolUse": {"toolUseId": call.get("id", ""), "name": function.get("name", ""),
                        "input": arguments if isinstance(arguments, dict) else {}}}


def _tool_result(message: Message) -> Block:
    text = message.text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    content = [{"json": value}] if isinstance(value, dict) else [{"text": text}]
    return {"toolResult": {"toolUseId": message.tool_call_id or "", "content": content}}


# -- Converse → OpenAI (the answer) -------------------------------------------------------------

def usage(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    read, write = int(raw.get("cacheReadInputTokens", 0)), int(raw.get("cacheWriteInputTokens", 0))
    prompt = int(raw.get("inputTokens", 0)) + read + write
    completion = int(raw.get("outputTokens", 0))
    out = Usage(prompt_tokens=prompt, completion_tokens=completion,
                total_tokens=prompt + completion, prompt_tokens_details={"cached_tokens": read})
    if write:
        out.cache_creation_input_tokens = write
    return out


def finish_reason(stop_reason: str | None) -> str:
    return STOP_REASONS.get(stop_reason or "end_turn", "stop")


def refusal_text(stop_reason: str) -> str:
    return f"Bedrock stopped the answer ({stop_reason})"


def from_converse_response(data: dict[str, Any], model: str) -> ChatResponse:
    content = ((data.get("output") or {}).get("message") or {}).get("content") or []
    text, thinking, calls = [], [], []
    for block in content:
        if isinstance(block.get("text"), str):
            text.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId", ""), "type": "function",
                          "function": {"name": use.get("name", ""),
                                       "arguments": json.dumps(use.get("input") or {})}})
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"].get("reasoningText") or {}
            thinking.append(str(reasoning.get("text", "")))
    stop = data.get("stopReason")
    finish = finish_reason(stop)
    message = ResponseMessage(content="".join(text) or None, tool_calls=calls or None)
    if thinking:
        message.reasoning_content = "".join(thinking)
    if finish == "content_filter":
        message.refusal = refusal_text(str(stop))
    return ChatResponse(model=model, choices=[Choice(message=message, finish_reason=finish)],
                        usage=usage(data.get("usage")))


class OpenAIChunks:
    """ConverseStream's events (`messageStart`, `contentBlockStart/Delta/Stop`, `messageStop`,
    `metadata`) as OpenAI chunk dicts. `done` once `metadata` (the usage, after
    `messageStop`) has come."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("chatcmpl")
        self.stopped = False
        self.done = False
        self._tools: dict[int, int] = {}     # content block index → tool call index

    def feed(self, name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        if name == "messageStart":
            return [self._chunk({"role": data.get("role", "assistant"), "content": ""})]
        if name == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if not use:
                return []
            index = self._tools.setdefault(int(data.get("contentBlockIndex", 0)),
                                           len(self._tools))
            return [self._chunk({"tool_calls": [{
                "index": index, "id": use.get("toolUseId", ""), "type": "function",
                "function": {"name": use.get("name", ""), "arguments": ""}}]})]
        if name == "contentBlockDelta":
            return self._delta(int(data.get("contentBlockIndex", 0)), data.get("delta") or {})
        if name == "messageStop":
            self.stopped = True
            stop = str(data.get("stopReason") or "end_turn")
            finish = finish_reason(stop)
            delta = {"refusal": refusal_text(stop)} if finish == "content_filter" else {}
            return [self._chunk(delta, finish)]
        if name == "metadata":
            self.done = True
            found = usage(data.get("usage"))
            if found is None:
                return []
            last = self._chunk({})
            last["choices"] = []
            last["usage"] = found.to_dict()
            return [last]
        return []   # contentBlockStop, and events added later

    def _delta(self, block: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if "toolUse" in delta:
            index = self._tools.setdefault(block, len(self._tools))
            piece = str((delta["toolUse"] or {}).get("input", ""))
            return [self._chunk({"tool_calls": [{"index": index,
                                                 "function": {"arguments": piece}}]})]
        reasoning = delta.get("reasoningContent") or {}
        if isinstance(reasoning.get("text"), str):
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        return []

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
