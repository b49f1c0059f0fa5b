"""Streams between the two wire formats, one event at a time.

`OpenAIChunks` turns Anthropic's SSE events into OpenAI `chat.completion.chunk` dicts, the last
carrying usage (the adapter); the first carries the input usage `message_start` announced
(completion 0), so a gateway serving Anthropic's events can report it up front.
`AnthropicEvents` turns OpenAI chunks into Anthropic's events (the gateway serving
`/v1/messages` with `stream: true`): `message_start` reports the input tokens as soon as they
are known (else the caller's estimate), `message_delta` the final usage, cache counts included.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from taskroute.exceptions import MalformedResponse, UpstreamStatus
from taskroute.providers.anthropic_format import (
    FINISH_REASONS,
    STOP_REASONS,
    THINKING_BLOCKS,
    usage,
)
from taskroute.providers.anthropic_inbound import messages_usage
from taskroute.response import Usage

ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}


class OpenAIChunks:
    """Anthropic stream events in, OpenAI chunks out. `done` once `message_stop` arrived."""

    def __init__(self, model: str) -> None:
        self.model, self.id, self.created = model, "", int(time.time())
        self._usage: dict[str, Any] = {}    # Anthropic's latest counts, key by key
        self.finish: str | None = None
        self.done = False
        self._tools: dict[int, int] = {}   # content block index → tool call index
        self._thinking: dict[int, dict[str, Any]] = {}  # block index → the block so far

    def feed(self, kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type", kind)
        if kind == "message_start":
            message = data["message"]
            self.id, self.model = str(message.get("id", "")), str(message.get("model", self.model))
            self._count(message.get("usage") or {})
            first = self._chunk({"role": "assistant", "content": ""})
            first["usage"] = {**usage(self._usage).to_dict(), "completion_tokens": 0}
            first["usage"]["total_tokens"] = first["usage"]["prompt_tokens"]
            return [first]
        if kind == "content_block_start":
            block = data["content_block"]
            if block.get("type") == "tool_use":
                index = self._tools.setdefault(int(data["index"]), len(self._tools))
                head = {"index": index, "id": block["id"], "type": "function",
                        "function": {"name": block["name"], "arguments": ""}}
                return [self._chunk({"tool_calls": [head]})]
            if block.get("type") in THINKING_BLOCKS:
                self._thinking[int(data["index"])] = dict(block)
                return []
            text = block.get("text") or ""
            return [self._chunk({"content": text})] if text else []
        if kind == "content_block_stop" and int(data.get("index", -1)) in self._thinking:
            whole = self._thinking.pop(int(data["index"]))
            return [self._chunk({"thinking_blocks": [whole]})]
        if kind == "content_block_delta":
            return self._delta(int(data["index"]), data["delta"])
        if kind == "message_delta":
            self._count(data.get("usage") or {})
            reason = (data.get("delta") or {}).get("stop_reason")
            self.finish = FINISH_REASONS.get(str(reason), "stop")
            return [self._chunk({}, self.finish)]
        if kind == "message_stop":
            self.done = True
            return [self._usage_chunk()]
        if kind == "error":
            error = data.get("error") or {}
            kind_ = str(error.get("type", "api_error"))
            raise UpstreamStatus(f"error in the stream: {kind_}: {error.get('message', '')}",
                                 status=ERROR_STATUS.get(kind_, 500), body=data)
        return []  # ping, content_block_stop and event types added later

    def _delta(self, block: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta["text"]})]
        if kind in ("thinking_delta", "signature_delta") and block in self._thinking:
            field = "thinking" if kind == "thinking_delta" else "signature"
            thought = self._thinking[block]
            thought[field] = str(thought.get(field) or "") + delta[field]
            return [self._chunk({"reasoning_content": delta["thinking"]})] \
                if kind == "thinking_delta" else []
        if kind == "input_json_delta":
            if block not in self._tools:
                raise MalformedResponse("input_json_delta for a block that is not a tool_use")
            call = {"index": self._tools[block], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # citations deltas have no OpenAI counterpart

    def _count(self, used: dict[str, Any]) -> None:
        """Anthropic's usage counts are cumulative: the latest value of each wins."""
        self._usage.update({k: v for k, v in used.items() if isinstance(v, int)})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _usage_chunk(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(self._usage).to_dict()}


class AnthropicEvents:
    """OpenAI chunks in, Anthropic `(event, data)` pairs out; call `finish()` after the last."""

    def __init__(self, model: str, message_id: str, *, input_estimate: int = 0) -> None:
        self.model, self.id = model, message_id
        self._started = False
        self._block: tuple[int, str] | None = None     # (index, "text" | "tool_use")
        self._next_index = 0
        self._tool_blocks: dict[int, int] = {}          # tool call index → block index
        self._stop_reason = "end_turn"
        self._usage = messages_usage(Usage(prompt_tokens=input_estimate))

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if chunk.get("usage"):  # the input count may come first (an Anthropic upstream)
            self._usage = messages_usage(msgspec.convert(chunk["usage"], Usage, strict=False))
        out = self.start()
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out += self._open("thinking", {"type": "thinking", "thinking": ""})
                out.append(("content_block_delta", {"type": "content_block_delta",
                            "index": self._block_index(), "delta": {
                                "type": "thinking_delta",
                                "thinking": delta["reasoning_content"]}}))
            for whole in delta.get("thinking_blocks") or []:
                out += self._thought(whole)
            if delta.get("content"):
                out += self._open("text", {"type": "text", "text": ""})
                out.append(("content_block_delta", {"type": "content_block_delta",
                            "index": self._block_index(),
                            "delta": {"type": "text_delta", "text": delta["content"]}}))
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        out = self.start() + self._close()
        out.append(("message_delta", {"type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason, "stop_sequence": None},
                    "usage": dict(self._usage)}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        """`message_start`, the first time only (the gateway may send it before the model's
        first chunk, with the input estimate)."""
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": dict(self._usage),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _thought(self, whole: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """A thinking block has ended: its signature (or, redacted, the block whole)."""
        if whole.get("type") == "thinking" and self._block and self._block[1] == "thinking":
            out = [("content_block_delta", {"type": "content_block_delta",
                    "index": self._block_index(), "delta": {
                        "type": "signature_delta", "signature": whole.get("signature", "")}})]
            return out + self._close()
        out = self._open("whole", whole)
        return out + self._close()

    def _block_index(self) -> int:
        assert self._block is not None
        return self._block[0]

    def _open(self, kind: str, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if self._block is not None and self._block[1] == kind and kind in ("text", "thinking"):
            return []
        out = self._close()
        self._block = (self._next_index, kind)
        self._next_index += 1
        out.append(("content_block_start", {"type": "content_block_start",
                    "index": self._block[0], "content_block": block}))
        return out

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        if self._block is None:
            return []
        index, self._block = self._block[0], None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _tool_delta(self, call: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        position = int(call.get("index", 0))
        function = call.get("function") or {}
        if position not in self._tool_blocks:
            out += self._open("tool_use", {"type": "tool_use", "id": call.get("id", ""),
                                           "name": function.get("name", ""), "input": {}})
            self._tool_blocks[position] = self._block_index()
        if function.get("arguments"):
            out.append(("content_block_delta", {"type": "content_block_delta",
                        "index": self._tool_blocks[position],
                        "delta": {"type": "input_json_delta",
                                  "partial_json": function["arguments"]}}))
        return out


def sse_event(kind: str, data: dict[str, Any]) -> bytes:
    """One Anthropic-style SSE frame."""
    return b"event: " + kind.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"
