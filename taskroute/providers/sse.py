"""Server-sent events, parsed as the WHATWG spec says: `data:` lines joined by newlines,
`event:` names, comments (`:`) ignored, an event dispatched at each blank line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from taskroute.providers.errors import Clock


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"


class EventParser:
    """Feed it lines (without their line endings); it returns an `Event` when one is complete."""

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # "id", "retry" and unknown fields change nothing here

    def _dispatch(self) -> Event | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return Event("\n".join(data), event or "message")


MAX_LINE = 8 * 2**20


async def events(response: aiohttp.ClientResponse, clock: Clock) -> AsyncIterator[Event]:
    """The events of a streamed response; each network read is bounded by the clock's deadline.

    The first event starts the clock's total phase. A stream that ends with an event still
    open (no blank line after it) dispatches that event too, as servers often omit it.
    """
    parser = EventParser()
    content = response.content
    pending = b""
    while True:
        async with asyncio.timeout_at(clock.deadline()):
            data = await content.readany()
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        if len(pending) > MAX_LINE:
            raise ValueError("an event-stream line longer than 8 MiB")
        for line in lines:
            event = parser.feed(line.decode("utf-8").rstrip("\r"))
            if event is not None:
                clock.started()
                yield event
    for text in (pending.decode("utf-8").rstrip("\r"), ""):
        last = parser.feed(text)
        if last is not None:
            yield last
