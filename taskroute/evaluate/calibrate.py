"""Calibrate the learned router's knob (λ) on a dataset: a share of strong calls or a budget.

Like RouteLLM's threshold calibration: the prompts' predicted probabilities are computed once,
then λ is searched so that at most the requested share of prompts goes to the strong model(s),
or the average cost per request stays within the budget (the smallest λ that satisfies it,
which keeps the most quality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.replay import choose
from taskroute.exceptions import CallerError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibration:
    lam: float
    strong_share: float
    mean_cost: float


def _outcome(probs: FloatArray, costs: FloatArray, lam: float,
             strong: Sequence[int]) -> Calibration:
    picks = choose(probs, costs, lam)
    return Calibration(lam, float(np.isin(picks, strong).mean()), float(costs[picks].mean()))


def calibrate(probs: FloatArray, costs: FloatArray, *, strong: Sequence[int],
              strong_share: float | None = None, budget: float | None = None,
              steps: int = 60) -> Calibration:
    """Smallest λ meeting the constraint (bisection on a log scale; both shrink as λ grows)."""
    if (strong_share is None) == (budget is None):
        raise CallerError("give exactly one of a strong-call share or a budget")
    if strong_share is not None and not 0.0 <= strong_share <= 1.0:
        raise CallerError("the strong-call share must be between 0 and 1")

    def ok(result: Calibration) -> bool:
        if strong_share is not None:
            return result.strong_share <= strong_share + 1e-12
        assert budget is not None
        return result.mean_cost <= budget + 1e-15

    first = _outcome(probs, costs, 0.0, strong)
    if ok(first):
        return first
    spread = float(costs.max() - costs.min()) or 1.0
    lo, hi = 0.0, 1.0 / spread
    while not ok(_outcome(probs, costs, hi, strong)):
        hi *= 4
        if hi > 1e12 / spread:
            raise CallerError("no λ meets the constraint: even the cheapest routing exceeds it")
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(_outcome(probs, costs, mid, strong)) else (mid, hi)
    return _outcome(probs, costs, hi, strong)
