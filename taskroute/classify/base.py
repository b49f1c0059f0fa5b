"""The extension point for turning a prompt's text into a task class.

One Protocol, one required method. Implementations live one per module:
`learned.py` holds the linear model that ships with the package. Each is a factory named in
`taskroute.plugins.CLASSIFIERS` (entry-point group `taskroute.classifiers`), which the policy
picks with `classifier: use:`; `registry.py` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Classifier", "Prediction"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """A classifier's answer: the most likely task class and its probability (0–1), and
    optionally the runners-up, most likely first (`ranked[0]` is `task` itself), which
    let the router use what an unsure classifier still knows."""

    task: str
    probability: float  # softmax probability of `task`
    ranked: tuple[tuple[str, float], ...] = ()


@runtime_checkable
class Classifier(Protocol):
    """Anything that can name the task class of a prompt's text."""

    def predict(self, text: str) -> Prediction: ...
