"""AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), both ways.

A message is a 12-byte prelude (total length, headers length, the prelude's CRC32), headers,
a payload and the whole message's CRC32, all big-endian:

    [total u32][headers u32][prelude crc u32][headers ...][payload ...][message crc u32]

A header is a 1-byte name length, the name, a 1-byte type and a value (strings and bytes
carry a 2-byte length). Bedrock's ConverseStream sends one message per event, named by its
`:event-type` header (`:message-type: event`), or an error (`:message-type: exception`, with
`:exception-type`). `Decoder` takes bytes as they arrive and returns the whole messages in
them; a bad CRC or a length out of bounds is a ValueError (mapped at the provider boundary),
never a guess.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

PRELUDE = 12
MAX_MESSAGE = 16 * 2**20      # the framing allows 16 MiB per message
_STR, _BYTES = 7, 6
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


@dataclass(frozen=True, slots=True)
class Message:
    headers: dict[str, Any]
    payload: bytes

    @property
    def kind(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def name(self) -> str:
        """The event's type, or the exception's."""
        key = ":exception-type" if self.kind == "exception" else ":event-type"
        return str(self.headers.get(key, ""))


class Decoder:
    """Feed it bytes as they come; it returns every message completed by them."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while len(self._buffer) >= PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise ValueError("event-stream prelude CRC mismatch")
            if not PRELUDE + 4 <= total <= MAX_MESSAGE or headers_length > total - PRELUDE - 4:
                raise ValueError(f"event-stream message length out of bounds: {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != crc:
                raise ValueError("event-stream message CRC mismatch")
            end = PRELUDE + headers_length
            out.append(Message(_headers(frame[PRELUDE:end]), frame[end:-4]))
        return out


def _headers(raw: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    while at < len(raw):
        size = raw[at]
        name = raw[at + 1:at + 1 + size].decode("utf-8")
        at += 1 + size
        kind = raw[at]
        at += 1
        value: Any
        if kind in (0, 1):
            value = kind == 0
        elif kind in (_STR, _BYTES):
            (length,) = struct.unpack_from(">H", raw, at)
            data = raw[at + 2:at + 2 + length]
            value = data.decode("utf-8") if kind == _STR else data
            at += 2 + length
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            (value,) = struct.unpack_from(fmt, raw, at)
            at += struct.calcsize(fmt)
        elif kind == 9:
            value = uuid.UUID(bytes=raw[at:at + 16])
            at += 16
        else:
            raise ValueError(f"event-stream header {name!r} of unknown type {kind}")
        headers[name] = value
    if at != len(raw):
        raise ValueError("event-stream headers overrun their length")
    return headers


def encode(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string headers (all Bedrock sends)."""
    raw = b"".join(
        bytes([len(n.encode())]) + n.encode() + bytes([_STR])
        + struct.pack(">H", len(v.encode())) + v.encode()
        for n, v in headers.items())
    total = PRELUDE + len(raw) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(name: str, payload: bytes) -> bytes:
    return encode({":event-type": name, ":content-type": "application/json",
                   ":message-type": "event"}, payload)


def exception(name: str, payload: bytes) -> bytes:
    return encode({":exception-type": name, ":content-type": "application/json",
                   ":message-type": "exception"}, payload)
