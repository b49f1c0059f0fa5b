"""`non_empty`: the answer says something — text that is not blank, or a tool call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, no_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


class NonEmptyGate:
    name = "non_empty"

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if answer.text.strip():
            return verdict(self.name, True)
        if answer.tool_calls:
            return verdict(self.name, True, "the answer is a tool call")
        return verdict(self.name, False, "the answer is empty")


def build(params: Mapping[str, Any], env: GateEnv) -> NonEmptyGate:
    no_settings("non_empty", params)
    return NonEmptyGate()
