"""A routed stream as the Responses API's semantic events: `response.created`,
`response.in_progress`, then per output item `response.output_item.added`, (for a message)
`response.content_part.added`, `response.output_text.delta` … `.done`, (for a function call)
`response.function_call_arguments.delta` … `.done`, `response.output_item.done`, and last
`response.completed` with the whole response. Each event is `event: TYPE` with its JSON, and
carries a `sequence_number`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from taskroute.gateway import responses_format as fmt
from taskroute.response import StreamChunk, Usage


class ResponseEvents:
    """The frames of one streamed response, fed the chat chunks in order, then None. `on_done`
    gets the finished response object (which it may add to), its text and its tool calls,
    before the last event is framed."""

    def __init__(
        self, body: Mapping[str, Any], response_id: str, model: Callable[[], str],
        on_done: Callable[[dict[str, Any], str, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.body, self.response_id, self._model = body, response_id, model
        self._on_done = on_done
        self._seq = 0
        self._started = False
        self._items: list[dict[str, Any]] = []      # output items, in order
        self._open: dict[str, Any] | None = None    # the item being streamed
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # a chunk's tool-call index → its item
        self._usage: Usage | None = None
        self._finish: str | None = None
        self.created_at: int | None = None

    # -- framing ---------------------------------------------------------------------------------

    def opening(self) -> list[bytes]:
        """`response.created` and `response.in_progress`, the first time only (the gateway may
        send them before the model's first chunk)."""
        if self._started:
            return []
        self._started = True
        shell = self._response("in_progress", [])
        self.created_at = shell["created_at"]
        return [self._event("response.created", response=shell),
                self._event("response.in_progress", response=shell)]

    def next_sequence_number(self) -> int:
        """For an event of the gateway's own among these (the route event)."""
        self._seq += 1
        return self._seq - 1

    def __call__(self, chunk: StreamChunk | None) -> Iterable[bytes]:
        out = self.opening()
        if chunk is None:
            self._close(out)
            done = self._response("completed", self._items)
            if self._on_done is not None:
                self._on_done(done, "".join(self._text), self._tool_calls())
            out.append(self._event("response.completed", response=done))
            return out
        data = chunk.data
        if data.get("usage"):
            self._usage = msgspec.convert(data["usage"], Usage)
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text_delta(str(delta["content"]), out)
            for call in delta.get("tool_calls") or ():
                self._call_delta(call, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    # -- items -----------------------------------------------------------------------------------

    def _text_delta(self, text: str, out: list[bytes]) -> None:
        item = self._open
        if item is None or item["type"] != "message":
            self._close(out)
            item = self._open_item(fmt.message_item("", "in_progress"), out)
            out.append(self._event("response.content_part.added", item_id=item["id"],
                                   output_index=self._index, content_index=0,
                                   part=fmt.text_part("")))
        self._text.append(text)
        out.append(self._event("response.output_text.delta", item_id=item["id"],
                               output_index=self._index, content_index=0, delta=text,
                               logprobs=[]))

    def _call_delta(self, call: Mapping[str, Any], out: list[bytes]) -> None:
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            self._close(out)
            item = fmt.function_item({"id": call.get("id"), "function": {
                "name": function.get("name", ""), "arguments": ""}}, "in_progress")
            self._calls[index] = self._open_item(item, out)
        arguments = function.get("arguments") or ""
        if arguments:
            item["arguments"] += arguments
            out.append(self._event("response.function_call_arguments.delta",
                                   item_id=item["id"], output_index=self._index,
                                   delta=arguments))

    def _open_item(self, item: dict[str, Any], out: list[bytes]) -> dict[str, Any]:
        self._items.append(item)
        self._open = item
        out.append(self._event("response.output_item.added", output_index=self._index,
                               item=dict(item)))
        return item

    def _close(self, out: list[bytes]) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        if item["type"] == "message":
            text = "".join(self._text)
            part = fmt.text_part(text)
            out.append(self._event("response.output_text.done", item_id=item["id"],
                                   output_index=self._index, content_index=0, text=text,
                                   logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item["id"],
                                   output_index=self._index, content_index=0, part=part))
            item["content"] = [part]
        else:
            out.append(self._event("response.function_call_arguments.done",
                                   item_id=item["id"], output_index=self._index,
                                   name=item["name"], arguments=item["arguments"]))
        item["status"] = "completed"
        out.append(self._event("response.output_item.done", output_index=self._index,
                               item=item))

    @property
    def _index(self) -> int:
        return len(self._items) - 1

    def _tool_calls(self) -> list[dict[str, Any]]:
        return [{"id": i["call_id"], "type": "function",
                 "function": {"name": i["name"], "arguments": i["arguments"]}}
                for i in self._items if i["type"] == "function_call"]

    def _response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        obj = fmt.response_object(
            self.body, self.response_id, self._model(), status=status, output=list(output),
            usage=fmt.usage_of(self._usage) if status == "completed" else None,
            finish_reason=self._finish, created_at=self.created_at)
        return obj

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = msgspec.json.encode({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"
