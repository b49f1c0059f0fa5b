"""The policy's own rules as a strategy, replayed over recorded outcomes.

Each prompt goes through `Router.decide` exactly as live traffic would (caller-named class when
the record has one, then the policy's rules, then the bundled classifier). The decision names a
policy model; it is matched to a dataset model by id (`provider/model` or the bare `model`).
When the dataset's models are not the policy's, its tiers stand for price levels instead: the
dataset's distinct prices are split over the tiers cheapest first, and each tier is served by
the model with the best training quality at its level. Predicted quality is 1 for the pick and
0 elsewhere, so the knob only moves requests down to cheaper models; a tiny term (the policy's
input-complexity signal × the model's price rank) breaks ties in the two-model threshold sweep,
so requests the policy sent to the same tier are escalated in order of complexity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.base import model_costs
from taskroute.evaluate.datasets import Dataset

if TYPE_CHECKING:
    from taskroute.router import Router

FloatArray = npt.NDArray[np.float64]
TIE_BREAK = 1e-3  # far below the pick's 1.0: it never changes a choice at λ = 0


def tier_models(tiers: int, costs: FloatArray, quality: FloatArray) -> list[int]:
    """Dataset column serving each tier position: price levels split over the tiers, the best
    model (by training quality, then cheapest) at each level."""
    levels = np.unique(costs)
    picks = []
    for t in range(tiers):
        level = levels[(t * (len(levels) - 1)) // max(tiers - 1, 1)]
        at_level = np.flatnonzero(costs == level)
        picks.append(int(at_level[np.argmax(quality[at_level])]))
    return picks


@dataclass
class RuleStrategy:
    """`rule` (the bundled default policy) or `rule:PATH` (a policy file)."""

    policy_file: str | None = None
    name: str = "rule"
    _by_tier: list[int] = field(default_factory=list, repr=False)
    _price_rank: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    _cached: Router | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._router()  # a missing or bad policy file fails now, before any evaluation

    def fit(self, train: Dataset) -> None:
        router = self._router()
        quality = np.nan_to_num(np.nanmean(train.scores(), axis=0), nan=0.0)
        costs = model_costs(train)
        self._by_tier = tier_models(len(router.policy.tiers), costs, quality)
        levels = np.unique(costs)
        self._price_rank = np.searchsorted(levels, costs) / max(len(levels) - 1, 1)

    def predict(self, test: Dataset) -> FloatArray:
        router = self._router()
        policy = router.policy
        columns = {m: j for j, m in enumerate(test.models)}
        out = np.zeros((len(test), len(test.models)))
        for i, rec in enumerate(test.records):
            task = rec.task if rec.task in policy.tasks else None
            decision = router.decide({"messages": [{"role": "user", "content": rec.text}]},
                                     task=task)
            j = columns.get(decision.model, columns.get(decision.model.split("/", 1)[-1]))
            if j is None:
                j = self._by_tier[policy.tier_index(decision.tier)]
            out[i, j] = 1.0
            out[i] += TIE_BREAK * min(max(decision.signals.complexity, 0.0), 1.0) * self._price_rank
        return out

    def _router(self) -> Router:
        if self._cached is None:
            from taskroute.router import Router

            self._cached = (Router.from_file(self.policy_file) if self.policy_file
                            else Router.default())
        return self._cached
