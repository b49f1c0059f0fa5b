"""The `Strategy` Protocol: an offline routing strategy, replayed over recorded outcomes.

A strategy is fitted on training records and then gives, for each test prompt, a predicted
quality per model; `evaluate/replay.py` turns that into choices as its knob moves. The
strategies themselves live in `strategies.py`, `rule.py` and `cascade.py` (the cascade calls
models in turn instead, and is replayed on its own). `model_costs` is here because the
strategies and the replay both price the models the same way.

(A *strategy* is evaluated offline; `taskroute.Router` routes live traffic.)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.datasets import Dataset

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Strategy(Protocol):
    name: str

    def fit(self, train: Dataset) -> None: ...

    def predict(self, test: Dataset) -> FloatArray:
        """(n_prompts, n_models) predicted quality, columns in `test.models` order."""
        ...


def model_costs(train: Dataset) -> FloatArray:
    """Each model's cost: its mean recorded cost, or, when the data has none, its training
    quality rank (the weakest 0, the strongest 1)."""
    if train.has_costs():
        return np.asarray(np.nan_to_num(np.nanmean(train.costs(), axis=0), nan=0.0), float)
    rank = np.argsort(np.argsort(np.nanmean(train.scores(), axis=0)))
    return np.asarray(rank / max(len(train.models) - 1, 1), dtype=float)


def lambda_grid(costs: FloatArray, n: int = 400, span: float = 1.0) -> FloatArray:
    """λ values for a curve: 0, then `n` points spaced geometrically so that λ·(cost spread)
    runs from 1e-3 to 1e4 in predicted-quality units, then one λ large enough that the
    cheapest model wins whenever predictions differ by at most `span` (the curve's end)."""
    spread = float(costs.max() - costs.min()) or 1.0
    gaps = np.diff(np.unique(costs))
    smallest = float(gaps.min()) if gaps.size else spread
    top = 4.0 * max(span, 1.0) / smallest
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e4, n) / spread, [top]])


def folds(n: int, k: int, seed: int = 0) -> list[IntArray]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, k)]
