"""The offline routing strategies, by the names `taskroute eval --strategy` takes.

Each is fitted on training records and then predicts a quality per model for each test prompt
(`taskroute.evaluate.base.Strategy`). Replay turns that into choices as its knob moves: the
model maximising predicted quality − λ·cost (ties to the cheaper). With two models this is
RouteLLM's threshold on P(strong) − P(weak). Names: `random`, `oracle`, `always:<model>`,
`learned`, `rule[:POLICY]` (evaluate/rule.py) and `cascade[:A,B]` (evaluate/cascade.py,
replayed differently: it calls models in turn); `cascade-learned` and `learned+gate`
(evaluate/escalation.py) judge answers with the learned gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from taskroute.evaluate.base import FloatArray, Strategy
from taskroute.evaluate.cascade import DEFAULT_GATES, CascadeStrategy
from taskroute.evaluate.datasets import Dataset
from taskroute.evaluate.rule import RuleStrategy
from taskroute.exceptions import CallerError, UnknownModel

if TYPE_CHECKING:
    from taskroute.evaluate.escalation import GatedStrategy
    from taskroute.learned.embedding import Embedder


@dataclass
class RandomStrategy:
    """Uniform noise: at λ = 0 a uniform pick; as λ grows, cheaper models win more often."""

    seed: int = 0
    name: str = "random"

    def fit(self, train: Dataset) -> None:
        return None

    def predict(self, test: Dataset) -> FloatArray:
        return np.random.default_rng(self.seed).uniform(size=(len(test), len(test.models)))


@dataclass
class OracleStrategy:
    """The recorded scores themselves: the upper bound (cheapest model with the best score)."""

    name: str = "oracle"

    def fit(self, train: Dataset) -> None:
        return None

    def predict(self, test: Dataset) -> FloatArray:
        return np.nan_to_num(test.scores(), nan=0.0)


@dataclass
class AlwaysStrategy:
    model: str
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"always:{self.model}"

    def fit(self, train: Dataset) -> None:
        return None

    def predict(self, test: Dataset) -> FloatArray:
        if self.model not in test.models:
            raise UnknownModel(self.model, test.models)
        out = np.full((len(test), len(test.models)), -np.inf)  # never chosen, whatever λ
        out[:, test.models.index(self.model)] = 1.0
        return out


@dataclass
class LearnedStrategy:
    """Trains a learned router (`taskroute.evaluate.train`) on the training fold; predicts
    P(success). With an `embedder`, the prompts' sentence vectors are features too (named
    `learned+embed`)."""

    c: float | None = None
    name: str = "learned"
    embedder: Embedder | None = None
    _router: object | None = field(default=None, repr=False)

    def fit(self, train: Dataset) -> None:
        from taskroute.evaluate.train import train as fit_router

        self._router = fit_router(train, c=self.c, embedder=self.embedder)

    @property
    def fitted_c(self) -> float | None:
        """The regularisation the last fit used (chosen by it when `c` is None)."""
        from taskroute.learned.model import LearnedRouter

        if isinstance(self._router, LearnedRouter):
            return float(self._router.info["C"])
        return self.c

    def predict(self, test: Dataset) -> FloatArray:
        from taskroute.evaluate.train import group_of
        from taskroute.learned.model import LearnedRouter, probabilities_table

        if not isinstance(self._router, LearnedRouter):
            raise CallerError("the learned strategy was used before fit")
        table = probabilities_table(self._router, test.texts,
                                    [group_of(r) for r in test.records])
        cols = [self._router.models.index(m) for m in test.models]
        return table[:, cols]


def _same_c(fitted: Strategy) -> Strategy:
    """A learned router for one fold with the regularisation `fitted` chose (no search)."""
    assert isinstance(fitted, LearnedStrategy)
    return LearnedStrategy(c=fitted.fitted_c, name=fitted.name, embedder=fitted.embedder)


def make_strategy(name: str, seed: int = 0, c: float | None = None,
                  gates: tuple[str, ...] | None = None,
                  embedder: Embedder | None = None,
                  ) -> Strategy | CascadeStrategy | GatedStrategy:
    """Strategy by CLI name; `c` fixes the learned router's regularisation, `gates` names the
    cascade's judges, `embedder` adds sentence vectors to the learned router's features."""
    if name == "cascade-learned":
        from taskroute.evaluate.escalation import LearnedCascadeStrategy

        return LearnedCascadeStrategy(seed=seed)
    if name == "learned+gate":
        from taskroute.evaluate.escalation import PreRoutedCascadeStrategy

        return PreRoutedCascadeStrategy(LearnedStrategy(c=c), _same_c, seed=seed)
    kind, _, arg = name.partition(":")
    if kind == "rule":
        return RuleStrategy(arg or None, name=name)
    if kind == "cascade":
        chain = tuple(m.strip() for m in arg.split(",") if m.strip())
        return CascadeStrategy(chain, gates or DEFAULT_GATES, name=name)
    if name == "random":
        return RandomStrategy(seed)
    if name == "oracle":
        return OracleStrategy()
    if name == "learned":
        if embedder is not None:
            return LearnedStrategy(c=c, name="learned+embed", embedder=embedder)
        return LearnedStrategy(c=c)
    if name.startswith("always:") and len(name) > len("always:"):
        return AlwaysStrategy(name.split(":", 1)[1])
    raise CallerError(f"unknown strategy {name!r}; known: random, oracle, always:<model>, "
                      "learned, rule[:POLICY], cascade[:MODEL,MODEL,...], cascade-learned, "
                      "learned+gate")
