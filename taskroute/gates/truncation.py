"""`not_truncated`: the model stopped on its own, not because it ran out of tokens
(`finish_reason: length`).

An answer cut at the caller's own `max_tokens` passes: the caller asked for that length, and
every model in the chain would be cut at it too, so escalating would only spend more for the
same cut. But a `length` finish well below that limit (the usage says the model wrote fewer
than `AT_LIMIT` of the tokens allowed) is the upstream's own cut — a deployment's lower output
cap, an overloaded server ending early — and is truncated like any other. Without usage the
cut is taken to be the caller's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, no_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

# The share of `max_tokens` at which a `length` finish is the caller's limit: providers count
# the limit a few tokens differently (special tokens, reasoning), so "at" is not "equal".
AT_LIMIT = 0.9


class NotTruncatedGate:
    name = "not_truncated"
    judges_cut = True  # its "no" on a live stream's end is mended by a continuation

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if answer.finish_reason != "length":
            return verdict(self.name, True)
        limit = request.max_tokens
        if limit is None:
            return verdict(self.name, False, "the answer was cut off (finish_reason: length)")
        written = answer.usage.completion_tokens if answer.usage is not None else None
        if written and written < AT_LIMIT * limit:
            return verdict(self.name, False, f"the answer was cut off at {written} tokens, "
                                             f"below the caller's max_tokens ({limit})")
        return verdict(self.name, True, f"cut at the caller's max_tokens ({limit})")


def build(params: Mapping[str, Any], env: GateEnv) -> NotTruncatedGate:
    no_settings("not_truncated", params)
    return NotTruncatedGate()
