"""`not_truncated`: the model stopped on its own, not because it ran out of tokens
(`finish_reason: length`). An answer cut at the caller's own `max_tokens` passes: the caller
asked for that length, and every model in the chain would be cut at it too, so escalating
would only spend more for the same cut."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, no_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


class NotTruncatedGate:
    name = "not_truncated"

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if answer.finish_reason == "length":
            if request.max_tokens is not None:
                return verdict(self.name, True, f"cut at the caller's max_tokens "
                                                f"({request.max_tokens})")
            return verdict(self.name, False, "the answer was cut off (finish_reason: length)")
        return verdict(self.name, True)


def build(params: Mapping[str, Any], env: GateEnv) -> NotTruncatedGate:
    no_settings("not_truncated", params)
    return NotTruncatedGate()
