"""`valid_json` (the answer must be JSON) and `valid_json_if_asked` (only when the request's
`response_format` asks for JSON; other answers pass)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, no_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


def json_asked(request: ChatRequest) -> bool:
    return request.format_kind in ("json_object", "json_schema", "strict_schema")


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) for JSON text, (None, why) otherwise."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


class ValidJsonGate:
    def __init__(self, *, only_if_asked: bool) -> None:
        self.only_if_asked = only_if_asked
        self.name = "valid_json_if_asked" if only_if_asked else "valid_json"

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if self.only_if_asked and not json_asked(request):
            return verdict(self.name, True, "JSON was not asked for")
        if not answer.text.strip() and answer.tool_calls:
            return verdict(self.name, True, "the answer is a tool call")
        _, problem = parse_json(answer.text)
        if problem:
            return verdict(self.name, False, f"the answer is {problem}")
        return verdict(self.name, True)


def build(params: Mapping[str, Any], env: GateEnv) -> ValidJsonGate:
    no_settings("valid_json", params)
    return ValidJsonGate(only_if_asked=False)


def build_if_asked(params: Mapping[str, Any], env: GateEnv) -> ValidJsonGate:
    no_settings("valid_json_if_asked", params)
    return ValidJsonGate(only_if_asked=True)
