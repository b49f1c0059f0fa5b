"""The `Classifier` Protocol: reads a prompt, answers a task class and how sure it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Prediction:
    task: str
    probability: float  # softmax probability of `task`


class Classifier(Protocol):
    def predict(self, text: str) -> Prediction: ...
