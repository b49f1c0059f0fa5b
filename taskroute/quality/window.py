"""Time windows written as `24h`, `7d`, `90m`, `30s` or `all`."""

from __future__ import annotations

import re

from taskroute.exceptions import CallerError

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_window(text: str | None) -> float | None:
    """Seconds in the window; None for `all` (or nothing given)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    match = _WINDOW.match(text.lower())
    if not match:
        raise CallerError(
            f"expected a time window such as 24h, 7d, 90m or all, not {text!r}"
        )
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds <= 0:
        raise CallerError(f"the time window must be longer than zero, not {text!r}")
    return seconds


def window_start(since_s: float | None, now: float) -> float | None:
    """The unix time a window of `since_s` seconds ending at `now` starts; None for all time."""
    return None if since_s is None else now - since_s
