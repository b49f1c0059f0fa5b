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


class EventReader:
    """A streamed response's events, a network read at a time: each `await read()` returns
    every event that is complete in what has arrived (waiting for the network only when
    nothing has), and an empty list at the end of the stream. Each wait is bounded by the
    clock's deadline; the first event starts the clock's total phase. A stream that ends with
    an event still open (no blank line after it) dispatches that event too, as servers often
    omit it."""

    __slots__ = ("_clock", "_content", "_ended", "_parser", "_pending")

    def __init__(self, response: aiohttp.ClientResponse, clock: Clock) -> None:
        self._content = response.content
        self._clock = clock
        self._parser = EventParser()
        self._pending = b""
        self._ended = False

    async def read(self) -> list[Event]:
        content, feed = self._content, self._parser.feed
        while not self._ended:
            data = content.read_nowait()  # everything already here, in one piece
            if not data:
                async with asyncio.timeout_at(self._clock.deadline()):
                    data = await content.readany()
                if not data:
                    break
            *lines, self._pending = (self._pending + data).split(b"\n")
            if len(self._pending) > MAX_LINE:
                raise ValueError("an event-stream line longer than 8 MiB")
            found: list[Event] = []
            for line in lines:
                event = feed(line.decode("utf-8").rstrip("\r"))
                if event is not None:
                    found.append(event)
            if found:
                self._clock.started()
                return found
        if self._ended:
            return []
        self._ended = True
        tail = [feed(text) for text in (self._pending.decode("utf-8").rstrip("\r"), "")]
        self._pending = b""
        return [event for event in tail if event is not None]


async def events(response: aiohttp.ClientResponse, clock: Clock) -> AsyncIterator[Event]:
    """The events of a streamed response, one by one (see `EventReader`)."""
    reader = EventReader(response, clock)
    while batch := await reader.read():
        for event in batch:
            yield event
