"""Turns for the vendors that want user and assistant turns to alternate (Anthropic, Bedrock,
Gemini): consecutive messages of one role become one turn."""

from __future__ import annotations

from typing import Any


def add_turn(turns: list[dict[str, Any]], role: str, items: list[Any], field: str) -> None:
    """`items` as a `role` turn (under `field`: Anthropic's and Bedrock's `content`, Gemini's
    `parts`), merged into the last turn when it has the same role."""
    if turns and turns[-1]["role"] == role:
        turns[-1][field].extend(items)
    else:
        turns.append({"role": role, field: items})
