"""The learned escalation gate's model: P(this cheap answer is right), from its features.

    model = EscalationModel.from_file("gate.json")
    model.probability(prompt, answer, model="mixtral-8x7b-chat")   # 0..1

Logistic regression over `taskroute.learned.answer.answer_features`, trained by
`taskroute train DATA --gate -o gate.json` (`taskroute.evaluate.escalation`). The file is
plain JSON (never pickle): a format header, the feature version, one weight per feature name
(a feature the file does not know weighs 0) and a threshold chosen on the training data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskroute.exceptions import DataError
from taskroute.learned.answer import ANSWER_FEATURES_VERSION, answer_features

__all__ = ["GATE_FORMAT", "EscalationModel"]

GATE_FORMAT = "taskroute.escalation_gate"
GATE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class EscalationModel:
    weights: Mapping[str, float]
    threshold: float = 0.5                 # accept at or above (chosen when trained)
    info: Mapping[str, Any] = field(default_factory=dict)

    def score(self, features: Mapping[str, float]) -> float:
        w = self.weights
        z = sum(value * w.get(name, 0.0) for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def probability(self, prompt: str, answer: str, *, model: str = "",
                    logprob: float | None = None, previous: Sequence[str] = ()) -> float:
        return self.score(answer_features(prompt, answer, model=model, logprob=logprob,
                                          previous=previous))

    def to_json(self) -> dict[str, Any]:
        return {"format": GATE_FORMAT, "format_version": GATE_FORMAT_VERSION,
                "features_version": ANSWER_FEATURES_VERSION, "threshold": self.threshold,
                "weights": dict(sorted(self.weights.items())), "info": dict(self.info)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_file(cls, path: str | Path) -> EscalationModel:
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read gate file: {exc.strerror or exc}",
                            file=source) from None
        if raw.startswith(b"\x80"):
            raise DataError("looks like a pickle; only JSON gate files are loaded", file=source)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise DataError("not a JSON gate file", file=source) from None
        return cls.from_json(payload, source)

    @classmethod
    def from_json(cls, payload: Any, source: str = "<memory>") -> EscalationModel:
        if not isinstance(payload, dict) or payload.get("format") != GATE_FORMAT:
            raise DataError(f"expected {GATE_FORMAT!r}", file=source, field="format")
        if payload.get("format_version") != GATE_FORMAT_VERSION:
            raise DataError(f"expected {GATE_FORMAT_VERSION}", file=source,
                            field="format_version")
        if payload.get("features_version") != ANSWER_FEATURES_VERSION:
            raise DataError(f"trained on other answer features (this taskroute has version "
                            f"{ANSWER_FEATURES_VERSION}); retrain with taskroute train --gate",
                            file=source, field="features_version")
        weights = payload.get("weights")
        if not isinstance(weights, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in weights.values()):
            raise DataError("expected an object of feature -> number", file=source,
                            field="weights")
        threshold = payload.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not 0.0 <= threshold <= 1.0:
            raise DataError("expected a number from 0 to 1", file=source, field="threshold")
        info = payload.get("info", {})
        return cls({str(k): float(v) for k, v in weights.items()}, float(threshold),
                   info if isinstance(info, dict) else {})
