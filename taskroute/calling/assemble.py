"""Stream chunks ⇄ whole answers: a buffered stream is assembled so gates can judge it, and a
whole answer (a race's winner) is replayed to a streaming caller as chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from taskroute.records import Tokens
from taskroute.response import ChatResponse, Choice, ResponseMessage, StreamChunk, Usage
from taskroute.signals import estimate_tokens


def carries_output(chunk: StreamChunk) -> bool:
    """Does this chunk give the caller something (text, a tool call, the end)? A bare role
    announcement does not: until a chunk does, the call can still escalate unseen."""
    data = chunk.data
    if data.get("usage") and not data.get("choices"):
        return True  # the usage at the end (a first chunk may carry the input count alone)
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")
                or delta.get("reasoning_content")):
            return True
        if choice.get("finish_reason"):
            return True
    return False


def assemble(chunks: Sequence[StreamChunk], *, model: str) -> ChatResponse:
    """One `ChatResponse` from a stream's chunks (first choice only)."""
    text: list[str] = []
    refusal: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    logprobs: list[Any] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    finish: str | None = None
    usage: Usage | None = None
    first = chunks[0].data if chunks else {}
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            refusal.append(delta.get("refusal") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            thinking.extend(delta.get("thinking_blocks") or ())
            for call in delta.get("tool_calls") or []:
                _merge_tool_call(tools, call)
            logprobs.extend((choice.get("logprobs") or {}).get("content") or [])
            finish = choice.get("finish_reason") or finish
    message = ResponseMessage(
        content="".join(text) if any(text) or not tools else None,
        tool_calls=[tools[i] for i in sorted(tools)] or None,
        refusal="".join(refusal) or None,
    )
    if thinking:
        message.thinking_blocks = thinking
        message.reasoning_content = "".join(reasoning)
    return ChatResponse(
        model=str(first.get("model") or model),
        choices=[Choice(message=message, finish_reason=finish,
                        logprobs={"content": logprobs} if logprobs else None)],
        usage=usage,
        **({"id": first["id"]} if isinstance(first.get("id"), str) else {}),
    )


def _merge_tool_call(tools: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    index = int(part.get("index", len(tools)))
    call = tools.setdefault(index, {"id": "", "type": "function",
                                    "function": {"name": "", "arguments": ""}})
    if part.get("id"):
        call["id"] = part["id"]
    function = part.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def response_chunks(response: ChatResponse) -> list[StreamChunk]:
    """A whole answer as the chunks a stream of it would have carried."""
    base = {"id": response.id, "object": "chat.completion.chunk",
            "created": response.created, "model": response.model}
    message = response.choices[0].message if response.choices else ResponseMessage()
    delta: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if message.tool_calls:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message.tool_calls)]
    if message.refusal:
        delta["refusal"] = message.refusal
    if isinstance(message.thinking_blocks, list):
        delta["reasoning_content"] = message.reasoning_content or ""
        delta["thinking_blocks"] = message.thinking_blocks
    first: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
    if response.logprobs:
        first["logprobs"] = response.logprobs
    chunks = [
        StreamChunk({**base, "choices": [first]}),
        StreamChunk({**base, "choices": [
            {"index": 0, "delta": {}, "finish_reason": response.finish_reason or "stop"}
        ]}),
    ]
    if response.usage is not None:
        chunks.append(StreamChunk({**base, "choices": [], "usage": response.usage.to_dict()}))
    return chunks


class Tally:
    """What a stream has carried so far: enough to cost it and to tell a finished answer from
    a cut one."""

    __slots__ = ("chunks", "finish_reason", "text", "tool_calls", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self.tool_calls = False      # has any part of a tool call gone by?

    def add(self, chunk: StreamChunk) -> None:
        # One pass over the chunk (it runs once per chunk on the stream's path): the first
        # choice's text and finish reason, every choice's tool-call arguments, the usage.
        self.chunks += 1
        data = chunk.data
        for position, choice in enumerate(data.get("choices") or ()):
            delta = choice.get("delta") or {}
            if position == 0:
                self.text.append(str(delta.get("content") or ""))
                self.finish_reason = choice.get("finish_reason") or self.finish_reason
            for call in delta.get("tool_calls") or ():
                self.tool_calls = True
                self.text.append(str((call.get("function") or {}).get("arguments") or ""))
        if data.get("usage"):
            self.usage = chunk.usage

    def plus(self, chunks: Sequence[StreamChunk]) -> Tally:
        """A copy with `chunks` added (this one unchanged)."""
        more = Tally()
        more.text, more.usage, more.finish_reason = list(self.text), self.usage, self.finish_reason
        more.chunks, more.tool_calls = self.chunks, self.tool_calls
        for chunk in chunks:
            more.add(chunk)
        return more

    def tokens(self, input_estimate: int) -> Tokens:
        """The stream's tokens: its reported usage, else estimates (the output estimated too
        when usage arrived before the answer, as Anthropic's input count does)."""
        usage = self.usage
        if usage is None or not (usage.prompt_tokens or usage.completion_tokens):
            return Tokens(input_estimate, estimate_tokens("".join(self.text)))
        tokens = Tokens.of(usage)
        if not usage.completion_tokens and any(self.text):
            tokens = replace(tokens, output=estimate_tokens("".join(self.text)))
        return tokens
