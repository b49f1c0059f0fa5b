"""Bounded reading of long prompts, shared by everything that scans text on the hot path."""

from __future__ import annotations


def head_and_tail(text: str, head: int, tail: int) -> str:
    """The first `head` and last `tail` characters (joined by a newline) when the text is
    longer than both: a 100k-character prompt then costs no more to scan than a short one, and
    the tail keeps the question that usually ends a long prompt."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]
