"""`{logprob: {min confidence: 0.8}}`: the model's own confidence, read from the token
log-probabilities it returned — exp(mean token logprob), the geometric mean of the token
probabilities. taskroute asks the provider for logprobs whenever a task has this gate
(`needs_logprobs`, read by `calling/logprobs.py`), whether or not the caller asked; when the
provider has none to give (Anthropic) the gate passes and says so.

`answer_confidence` is also what the speculative race reads (`gates/confidence.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, allowed_settings, number_setting, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


def answer_confidence(answer: ChatResponse) -> float | None:
    """exp(mean logprob) over the answer's tokens, or None without logprobs."""
    logprobs = answer.logprobs or {}
    tokens = logprobs.get("content") or []
    values = [
        t["logprob"] for t in tokens
        if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
    ]
    if not values:
        return None
    return math.exp(sum(values) / len(values))


class LogprobGate:
    name = "logprob"
    needs_logprobs = True       # the call path asks the provider for them

    def __init__(self, min_confidence: float) -> None:
        self.min_confidence = min_confidence

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        confidence = answer_confidence(answer)
        if confidence is None:
            return verdict(self.name, True, "no logprobs returned; confidence not checked")
        ok = confidence >= self.min_confidence
        relation = "at least" if ok else "below"
        return verdict(
            self.name, ok, f"confidence {confidence:.2f}, {relation} {self.min_confidence:.2f}",
            confidence=confidence,
        )


def build(params: Mapping[str, Any], env: GateEnv) -> LogprobGate:
    allowed_settings("logprob", params, ("min_confidence", "value"))
    key = "value" if "value" in params else "min_confidence"
    low = number_setting("logprob", params, key, default=0.5, low=0.0, high=1.0)
    return LogprobGate(low if low is not None else 0.5)
