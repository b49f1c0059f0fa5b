"""`{length: {min: 20, max: 2000}}`: the answer's text is within bounds, in characters
(or in words with `unit: words`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, allowed_settings, number_setting, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


class LengthGate:
    name = "length"

    def __init__(self, low: int | None, high: int | None, unit: str = "characters") -> None:
        self.low, self.high, self.unit = low, high, unit

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        text = answer.text.strip()
        size = len(text.split()) if self.unit == "words" else len(text)
        if self.low is not None and size < self.low:
            return verdict(self.name, False, f"{size} {self.unit}, fewer than {self.low}")
        if self.high is not None and size > self.high:
            return verdict(self.name, False, f"{size} {self.unit}, more than {self.high}")
        return verdict(self.name, True, f"{size} {self.unit}")


def build(params: Mapping[str, Any], env: GateEnv) -> LengthGate:
    allowed_settings("length", params, ("min", "max", "unit"))
    low = number_setting("length", params, "min", low=0)
    high = number_setting("length", params, "max", low=0)
    if low is None and high is None:
        raise ValueError("the length gate needs 'min', 'max' or both, e.g. {length: {min: 1}}")
    if low is not None and high is not None and low > high:
        raise ValueError(f"the length gate's min ({low:g}) is above its max ({high:g})")
    unit = str(params.get("unit", "characters"))
    if unit not in ("characters", "words"):
        raise ValueError(f"the length gate's unit is characters or words, not {unit!r}")
    return LengthGate(
        int(low) if low is not None else None, int(high) if high is not None else None, unit
    )
