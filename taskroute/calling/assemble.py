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
    return Tally.of(chunks).response(model=model)


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
    """What a stream has carried so far, taken in once per chunk as it goes by: enough to cost
    it and to tell a finished answer from a cut one, and the answer itself (`response`) for
    gates to judge at any point — the refusal hold its held opening, the record the whole
    answer — without reading any chunk again."""

    __slots__ = ("_content", "_finish", "_first", "_logprobs", "_reasoning", "_refusal",
                 "_thinking", "_tools", "chunks", "finish_reason", "text", "tool_calls", "usage")

    def __init__(self) -> None:
        # the answer's text as logged and estimated: the first choice's text and every
        # choice's tool-call arguments, as they came
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self.tool_calls = False      # has any part of a tool call gone by?
        # the first choice (index 0) assembled, for `response`
        self._first: dict[str, Any] | None = None   # the first chunk (its id and model)
        self._content: list[str] = []
        self._refusal: list[str] = []
        self._reasoning: list[str] = []
        self._thinking: list[dict[str, Any]] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._logprobs: list[Any] = []
        self._finish: str | None = None

    @classmethod
    def of(cls, chunks: Sequence[StreamChunk]) -> Tally:
        tally = cls()
        for chunk in chunks:
            tally.add(chunk)
        return tally

    def add(self, chunk: StreamChunk) -> None:
        # One pass over the chunk (it runs once per chunk on the stream's path); empty pieces
        # are not kept (joined, they add nothing).
        self.chunks += 1
        data = chunk.data
        if self._first is None:
            self._first = data
        for position, choice in enumerate(data.get("choices") or ()):
            delta = choice.get("delta") or {}
            content = delta.get("content")
            finish = choice.get("finish_reason")
            calls = delta.get("tool_calls") or ()
            if position == 0:
                if content:
                    self.text.append(str(content))
                if finish:
                    self.finish_reason = finish
            for call in calls:
                self.tool_calls = True
                self.text.append(str((call.get("function") or {}).get("arguments") or ""))
            if choice.get("index", 0) != 0:
                continue
            # the first choice, assembled
            if content:
                self._content.append(content)
            if refusal := delta.get("refusal"):
                self._refusal.append(refusal)
            if reasoning := delta.get("reasoning_content"):
                self._reasoning.append(reasoning)
            if thinking := delta.get("thinking_blocks"):
                self._thinking.extend(thinking)
            for call in calls:
                _merge_tool_call(self._tools, call)
            if logprobs := choice.get("logprobs"):
                self._logprobs.extend(logprobs.get("content") or ())
            if finish:
                self._finish = finish
        if data.get("usage"):
            self.usage = chunk.usage

    def response(self, *, model: str) -> ChatResponse:
        """The answer so far, as one `ChatResponse` (the first choice): its own copy, which
        the chunks taken in after it leave as it is."""
        tools = self._tools
        message = ResponseMessage(
            content="".join(self._content) if self._content or not tools else None,
            tool_calls=[{**tools[i], "function": dict(tools[i]["function"])}
                        for i in sorted(tools)] or None,
            refusal="".join(self._refusal) or None,
        )
        if self._thinking:
            message.thinking_blocks = list(self._thinking)
            message.reasoning_content = "".join(self._reasoning)
        first = self._first or {}
        return ChatResponse(
            model=str(first.get("model") or model),
            choices=[Choice(message=message, finish_reason=self._finish,
                            logprobs={"content": list(self._logprobs)} if self._logprobs
                            else None)],
            usage=self.usage,
            **({"id": first["id"]} if isinstance(first.get("id"), str) else {}),
        )

    def plus(self, chunks: Sequence[StreamChunk]) -> Tally:
        """A copy with `chunks` added (this one unchanged)."""
        more = Tally()
        more.text, more.usage, more.finish_reason = list(self.text), self.usage, self.finish_reason
        more.chunks, more.tool_calls = self.chunks, self.tool_calls
        more._first, more._finish = self._first, self._finish
        more._content, more._refusal = list(self._content), list(self._refusal)
        more._reasoning, more._thinking = list(self._reasoning), list(self._thinking)
        more._logprobs = list(self._logprobs)
        more._tools = {i: {**call, "function": dict(call["function"])}
                       for i, call in self._tools.items()}
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
