"""`{learned: {model file: gate.json, min confidence: 0.6}}`: the learned escalation gate.

It reads the answer the way `taskroute train DATA --gate -o gate.json` taught it (the form
the prompt asked for and whether the answer gives it, code that parses and defines the
function asked for, length against demand, hedging, the model's log-probabilities where
present, which model answered; `taskroute.learned.answer`) and passes the answer when
P(right) is at least `min confidence` (default: the threshold stored in the file). It reports
that probability as its confidence, so the speculative race reads it too
(`gates/confidence.py`: a gate's own confidence decides first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskroute.exceptions import DataError
from taskroute.gates.base import GateEnv, allowed_settings, number_setting, verdict
from taskroute.gates.logprob import answer_confidence
from taskroute.learned.escalation import EscalationModel
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


class LearnedGate:
    name = "learned"

    def __init__(self, model: EscalationModel, min_confidence: float) -> None:
        self.model = model
        self.min_confidence = min_confidence

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        p = self.model.probability(request.last_user_text, answer.text, model=answer.model,
                                   logprob=answer_confidence(answer))
        ok = p >= self.min_confidence
        relation = "at least" if ok else "below"
        return verdict(self.name, ok,
                       f"P(right) {p:.2f}, {relation} {self.min_confidence:.2f}",
                       confidence=p)


def build(params: Mapping[str, Any], env: GateEnv) -> LearnedGate:
    allowed_settings("learned", params, ("model_file", "min_confidence"))
    path = params.get("model_file")
    if not isinstance(path, str) or not path:
        raise ValueError("the learned gate needs 'model file': a gate trained by "
                         "`taskroute train DATA --gate -o gate.json`")
    try:
        model = EscalationModel.from_file(path)
    except DataError as exc:
        raise ValueError(str(exc)) from None
    low = number_setting("learned", params, "min_confidence", default=model.threshold,
                         low=0.0, high=1.0)
    return LearnedGate(model, model.threshold if low is None else low)
