"""`{regex: '^[A-D]$'}`: the answer (trimmed) matches a regular expression, searched as
`re.search` does; anchor it with ^ and $ to match the whole answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, allowed_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


class RegexGate:
    name = "regex"

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if self.pattern.search(answer.text.strip()):
            return verdict(self.name, True)
        return verdict(self.name, False, f"the answer does not match /{self.pattern.pattern}/")


def build(params: Mapping[str, Any], env: GateEnv) -> RegexGate:
    allowed_settings("regex", params, ("value", "pattern", "ignore_case"))
    text = params.get("pattern", params.get("value"))
    if not isinstance(text, str) or not text:
        raise ValueError("the regex gate needs a pattern, e.g. {regex: '^[A-D]$'}")
    flags = re.IGNORECASE if params.get("ignore_case") is True else 0
    try:
        return RegexGate(re.compile(text, flags))
    except re.error as exc:
        raise ValueError(f"the regex gate's pattern {text!r} is not valid: {exc}") from None
