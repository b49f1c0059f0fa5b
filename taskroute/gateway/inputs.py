"""What a client sends, checked before anything reads it: a JSON body's nesting depth and the
bytes of its header values. Both are refused as the caller's mistake (400), never met later
as a `RecursionError` or a `UnicodeEncodeError` deep in the call path (a 500).

The depth is checked without recursion. Most bodies have fewer brackets than the limit and
so cannot be too deep: one C-speed count of the raw bytes settles them; only the rest are
walked, with an explicit stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from taskroute.exceptions import InvalidRequest

# Far deeper than any request or tool schema needs, far shallower than Python's recursion
# limit, which whatever later walks the body (gates, the log, the wire encoders) must stay in.
MAX_JSON_DEPTH = 64

_decoder = msgspec.json.Decoder()


def decode_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`body` as JSON, refusing anything not strictly JSON or nested over `max_depth`."""
    try:
        value = _decoder.decode(body)
    except RecursionError:  # msgspec's own guard, for nesting in the thousands
        raise _too_deep(max_depth) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if body.count(b"[") + body.count(b"{") > max_depth and depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` deep (a scalar is depth 0,
    `[]` is 1), walked with a stack of its own."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse a header value that is not UTF-8. aiohttp keeps such bytes as lone surrogates
    (`surrogateescape`), which fail the moment anything encodes them: the key comparison, the
    log, a header forwarded upstream."""
    for name, value in headers.items():
        if value.isascii():
            continue
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidRequest(f"the {name} header is not valid UTF-8") from None


def _too_deep(limit: int) -> InvalidRequest:
    return InvalidRequest(f"the request body nests JSON more than {limit} levels deep")
