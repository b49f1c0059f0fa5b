"""The learned escalation gate, trained and replayed on recorded (prompt, answer, score) data.

    gate = train_gate(data)                     # EscalationModel (plain JSON when saved)
    `taskroute eval DATA --test TEST --strategy cascade-learned`
    `taskroute eval DATA --test TEST --strategy learned+gate`   (pre-router, then the gate)

Training rows: every recorded answer, once on its own and once after the answer of a cheaper
model to the same prompt (so agreement between two cheap answers is learned); the label is
whether it scored >= 0.5. Logistic regression (scikit-learn, the `eval` extra), exported as
one weight per feature name.

The `cascade-learned` strategy calls models cheapest first along a chain and keeps the first
answer the gate accepts (every call paid). Its knob λ trades quality for cost: for each λ the
chain (one to three of the models no other model beats on both cost and quality in training)
and the acceptance thresholds are the ones that maximise quality − λ·cost on the training
split, judged with out-of-fold gate probabilities, so nothing is tuned on the scored data.

The `learned+gate` strategy lets the learned pre-router pick the first model for each prompt
instead of starting every prompt at the chain's cheapest, and escalates once when the gate
rejects that answer (`PreRoutedCascadeStrategy`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.base import Strategy, folds, lambda_grid, model_costs
from taskroute.evaluate.datasets import Dataset
from taskroute.exceptions import CallerError, DataError
from taskroute.learned.answer import answer_features
from taskroute.learned.escalation import EscalationModel

FloatArray = npt.NDArray[np.float64]
THRESHOLDS = (0.0, 0.3, 0.45, 0.55, 0.65, 0.75, 0.85, 0.92, 1.01)
FOLDS = 5
MAX_CHAIN = 3
MIN_GROUP = 30  # prompts a group needs in training to get chains of its own


def _rows(data: Dataset, seed: int = 0) -> tuple[list[dict[str, float]], list[int]]:
    costs = model_costs(data)
    order = [data.models[j] for j in np.argsort(costs, kind="stable")]
    rng = np.random.default_rng(seed)
    feats: list[dict[str, float]] = []
    labels: list[int] = []
    for rec in data.records:
        for k, name in enumerate(order):
            outcome = rec.outcomes.get(name)
            if outcome is None or outcome.response is None:
                continue
            label = int(outcome.score >= 0.5)
            feats.append(answer_features(rec.text, outcome.response, model=name))
            labels.append(label)
            cheaper = [m for m in order[:k] if (o := rec.outcomes.get(m)) is not None
                       and o.response is not None]
            if cheaper:
                prev = rec.outcomes[cheaper[int(rng.integers(len(cheaper)))]].response
                assert prev is not None
                feats.append(answer_features(rec.text, outcome.response, model=name,
                                             previous=[prev]))
                labels.append(label)
    return feats, labels


def train_gate(data: Dataset, c: float = 1.0, seed: int = 0) -> EscalationModel:
    """Fit the gate on every recorded answer in `data`."""
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError("training the gate needs scikit-learn: "
                                  "pip install 'taskroute[eval]'") from exc
    feats, labels = _rows(data, seed)
    if not feats:
        raise DataError("the escalation gate needs recorded responses; this data has none",
                        file=data.source)
    if len(set(labels)) < 2:
        raise DataError("every recorded answer has the same score; nothing to learn",
                        file=data.source)
    vec = DictVectorizer()
    x = vec.fit_transform(feats)
    model = LogisticRegression(C=c, max_iter=2000, fit_intercept=False)
    model.fit(x, np.asarray(labels))
    weights = {name: float(w) for name, w in zip(vec.feature_names_, model.coef_[0],
                                                 strict=True) if abs(w) > 1e-6}
    return EscalationModel(weights, 0.5, {"n_rows": len(labels), "C": c,
                                          "positive_share": float(np.mean(labels)),
                                          "source": data.source})


def record_groups(data: Dataset, known: set[str | None] | None = None,
                  ) -> npt.NDArray[np.object_]:
    """Each record's group (`evaluate.train.group_of`: its task class), None for a group
    outside `known` (default: the groups with MIN_GROUP records or more)."""
    from taskroute.evaluate.train import group_of

    groups = [group_of(r) for r in data.records]
    if known is None:
        counts = {g: groups.count(g) for g in set(groups)}
        known = {g for g, n in counts.items() if n >= MIN_GROUP}
    return np.array([g if g in known else None for g in groups], dtype=object)


@dataclass(frozen=True)
class Chain:
    models: tuple[int, ...]          # column indices, cheapest first
    thresholds: tuple[float, ...]    # one per model but the last


class GateTable:
    """The gate's probability for every (prompt, model, cheaper previous model or none);
    `members` in the chains' order, cheapest first."""

    def __init__(self, gate: EscalationModel | list[EscalationModel], data: Dataset,
                 members: Sequence[int], parts: Sequence[npt.NDArray[np.int64]] | None = None,
                 ) -> None:
        n = len(data)
        self.single: dict[int, FloatArray] = {j: np.zeros(n) for j in members}
        self.after: dict[tuple[int, int], FloatArray] = {}
        gates = gate if isinstance(gate, list) else [gate]
        owner = np.zeros(n, dtype=np.int64)
        if parts is not None:
            for k, part in enumerate(parts):
                owner[part] = k
        for a, b in itertools.combinations(members, 2):
            self.after[(a, b)] = np.zeros(n)
        for i, rec in enumerate(data.records):
            g = gates[int(owner[i])]
            answers = {j: rec.outcomes[data.models[j]].response or "" for j in members}
            for j in members:
                self.single[j][i] = g.probability(rec.text, answers[j], model=data.models[j])
            for a, b in self.after:
                self.after[(a, b)][i] = g.probability(rec.text, answers[b],
                                                      model=data.models[b],
                                                      previous=[answers[a]])

    def run(self, chain: Chain, scores: FloatArray, costs: FloatArray,
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per prompt: the quality kept, the cost paid (every call), the calls made."""
        n = scores.shape[0]
        undecided = np.ones(n, dtype=bool)
        quality, spent, calls = np.zeros(n), np.zeros(n), np.zeros(n)
        for step, j in enumerate(chain.models):
            spent[undecided] += costs[undecided, j]
            calls[undecided] += 1
            if step == len(chain.models) - 1:
                accept = undecided
            else:
                p = self.single[j] if step == 0 else self.after[(chain.models[step - 1], j)]
                accept = undecided & (p >= chain.thresholds[step])
            quality[accept] = scores[accept, j]
            undecided &= ~accept
        return quality, spent, calls


def frontier(scores: FloatArray, costs: FloatArray) -> list[int]:
    """The models no other model beats on both mean cost and mean quality, cheapest first."""
    q, c = scores.mean(axis=0), costs.mean(axis=0)
    keep = [j for j in range(len(q)) if not any(
        (c[k] <= c[j] and q[k] > q[j]) or (c[k] < c[j] and q[k] >= q[j]) for k in range(len(q)))]
    return sorted(keep, key=lambda j: c[j])


def chains(members: Sequence[int]) -> list[Chain]:
    out = [Chain((j,), ()) for j in members]
    for size in range(2, MAX_CHAIN + 1):
        for combo in itertools.combinations(members, size):
            for ts in itertools.product(THRESHOLDS[1:-1], repeat=size - 1):
                out.append(Chain(combo, ts))
    return out


def _cost_matrix(data: Dataset, fallback: FloatArray) -> FloatArray:
    recorded = data.costs()
    return np.asarray(np.where(np.isnan(recorded), fallback[None, :], recorded), dtype=float)


@dataclass
class LearnedCascadeStrategy:
    """`cascade-learned`: the cascade judged by the learned gate, its chain and thresholds
    chosen per λ on the training split (see the module docstring), for each group of prompts
    (`evaluate.train.group_of`: the task class a record carries) with enough of them."""

    name: str = "cascade-learned"
    c: float = 1.0
    seed: int = 0
    gate: EscalationModel | None = None
    _plan: list[tuple[float, dict[str | None, Chain]]] = field(default_factory=list, repr=False)
    _members: list[int] = field(default_factory=list, repr=False)

    def check(self, data: Dataset) -> None:
        if not any(o.response is not None for r in data.records for o in r.outcomes.values()):
            raise DataError("the cascade needs recorded responses; this data has none",
                            file=data.source)

    def _groups(self, data: Dataset, known: set[str | None] | None = None,
                ) -> npt.NDArray[np.object_]:
        return record_groups(data, known)

    def fit(self, train: Dataset) -> None:
        scores = np.nan_to_num(train.scores(), nan=0.0)
        mean_costs = model_costs(train)
        costs = _cost_matrix(train, mean_costs)
        groups = self._groups(train)
        names = sorted(set(groups), key=str)
        by_cost = np.argsort(np.argsort(mean_costs, kind="stable"))  # one order for every group
        members = {g: sorted(frontier(scores[groups == g], costs[groups == g]),
                             key=lambda j: by_cost[j]) for g in names}
        self._members = sorted({j for m in members.values() for j in m},
                               key=lambda j: by_cost[j])
        parts = folds(len(train), FOLDS, self.seed)
        everyone = np.arange(len(train))
        oof = [train_gate(train.subset(np.setdiff1d(everyone, p)), self.c, self.seed)
               for p in parts]
        table = GateTable(oof, train, self._members, parts)
        options: dict[str | None, tuple[list[Chain], FloatArray]] = {}
        for g in names:
            rows = groups == g
            candidates = chains(members[g])
            figures = np.array([[float(v[rows].sum()) for v in
                                 table.run(ch, scores, costs)[:2]] for ch in candidates])
            options[g] = (candidates, figures)
        self._plan = []
        for lam in lambda_grid(mean_costs):
            pick: dict[str | None, Chain] = {}
            for g, (candidates, figures) in options.items():
                utility = figures[:, 0] - lam * figures[:, 1]
                tied = np.flatnonzero(utility >= utility.max() - 1e-9)
                pick[g] = candidates[int(tied[np.argmin(figures[tied, 1])])]  # the cheaper
            self._plan.append((float(lam), pick))
        self._known = set(names)
        self.gate = train_gate(train, self.c, self.seed)

    def points(self, test: Dataset, fallback_costs: FloatArray,
               ) -> list[tuple[float, dict[str | None, Chain], dict[str, float]]]:
        """(λ, chain per group, figures) for every λ of the plan, replayed on `test`."""
        if self.gate is None:
            raise CallerError("the learned cascade was used before fit")
        scores = np.nan_to_num(test.scores(), nan=0.0)
        costs = _cost_matrix(test, fallback_costs)
        table = GateTable(self.gate, test, self._members)
        groups = self._groups(test, self._known)
        runs: dict[Chain, tuple[FloatArray, FloatArray, FloatArray]] = {}
        out = []
        for lam, pick in self._plan:
            n = len(test)
            quality, spent, calls = np.zeros(n), np.zeros(n), np.zeros(n)
            for g, chain in pick.items():
                if chain not in runs:
                    runs[chain] = table.run(chain, scores, costs)
                rows = groups == g
                for total, part in zip((quality, spent, calls), runs[chain], strict=True):
                    total[rows] = part[rows]
            out.append((lam, pick, {"quality": float(quality.mean()),
                                    "cost": float(spent.mean()),
                                    "escalation-rate": float((calls > 1).mean()),
                                    "calls-per-request": float(calls.mean())}))
        return out


@dataclass
class PreRoutedCascadeStrategy:
    """`learned+gate`: the learned pre-router picks the first model for each prompt, the learned
    gate judges its answer and, below a threshold, one escalation goes to a stronger model;
    every call is paid. Per λ, the pre-router's pick is its best predicted quality − λ·cost
    among the frontier models, and the threshold and the escalation target are those that
    maximise quality − λ·cost on the training split, for each group of prompts (as
    `cascade-learned` has them), with out-of-fold gate probabilities and,
    when `fold_router` is given, out-of-fold pre-router picks (in-sample picks look better
    than they are, and the plan would then trust them too much)."""

    router: Strategy | None = None   # the pre-router (`learned` in `make_strategy`)
    # A fresh pre-router for one fold, given the one fitted on the whole training split (so a
    # fold can reuse what that fit chose, such as its regularisation).
    fold_router: Callable[[Strategy], Strategy] | None = None
    name: str = "learned+gate"
    c: float = 1.0
    seed: int = 0
    gate: EscalationModel | None = None
    _fitted: bool = field(default=False, repr=False)
    _members: list[int] = field(default_factory=list, repr=False)
    _plan: list[tuple[float, dict[str | None, tuple[float, int]]]] = field(
        default_factory=list, repr=False)
    _known: set[str | None] = field(default_factory=set, repr=False)

    def check(self, data: Dataset) -> None:
        LearnedCascadeStrategy.check(LearnedCascadeStrategy(), data)

    def _first_picks(self, predicted: FloatArray, lam: float, mean_costs: FloatArray,
                     ) -> npt.NDArray[np.int64]:
        members = np.asarray(self._members)
        utility = predicted[:, members] - lam * mean_costs[members][None, :]
        return np.asarray(members[np.argmax(utility, axis=1)], dtype=np.int64)  # ties: cheaper

    def fit(self, train: Dataset) -> None:
        if self.router is None:
            raise CallerError("the pre-routed cascade needs a pre-router")
        scores = np.nan_to_num(train.scores(), nan=0.0)
        mean_costs = model_costs(train)
        costs = _cost_matrix(train, mean_costs)
        self._members = frontier(scores, costs)  # cheapest first
        self.router.fit(train)
        parts = folds(len(train), FOLDS, self.seed)
        everyone = np.arange(len(train))
        if self.fold_router is None:
            predicted = self.router.predict(train)
        else:
            predicted = np.zeros((len(train), len(train.models)))
            for p in parts:
                fold = self.fold_router(self.router)
                fold.fit(train.subset(np.setdiff1d(everyone, p)))
                predicted[p] = fold.predict(train.subset(p))
        oof = [train_gate(train.subset(np.setdiff1d(everyone, p)), self.c, self.seed)
               for p in parts]
        table = GateTable(oof, train, self._members, parts)
        groups = record_groups(train)
        self._known = set(groups)
        masks = {g: groups == g for g in self._known}
        options = [(t, target) for target in self._members for t in THRESHOLDS]
        self._plan = []
        rows = np.arange(len(train))
        for lam in lambda_grid(mean_costs):
            first = self._first_picks(predicted, float(lam), mean_costs)
            runs = [_escalate(first, target, t, table, scores, costs, rows)
                    for t, target in options]
            pick: dict[str | None, tuple[float, int]] = {}
            for g, mask in masks.items():
                # the best quality − λ·cost in the group; ties to the cheaper
                keys = [(float(q[mask].sum() - lam * s[mask].sum()), -float(s[mask].sum()))
                        for q, s in runs]
                pick[g] = options[max(range(len(options)), key=keys.__getitem__)]
            self._plan.append((float(lam), pick))
        self.gate = train_gate(train, self.c, self.seed)
        self._fitted = True

    def points(self, test: Dataset, fallback_costs: FloatArray,
               ) -> list[tuple[float, dict[str | None, Chain], dict[str, float]]]:
        """(λ, no chain (the first model is chosen per prompt), figures) for every λ of the
        plan, replayed on `test`."""
        if self.gate is None or self.router is None or not self._fitted:
            raise CallerError("the pre-routed cascade was used before fit")
        scores = np.nan_to_num(test.scores(), nan=0.0)
        costs = _cost_matrix(test, fallback_costs)
        table = GateTable(self.gate, test, self._members)
        predicted = self.router.predict(test)
        groups = record_groups(test, self._known)
        rows = np.arange(len(test))
        out: list[tuple[float, dict[str | None, Chain], dict[str, float]]] = []
        for lam, pick in self._plan:
            first = self._first_picks(predicted, lam, fallback_costs)
            quality, spent = np.zeros(len(test)), np.zeros(len(test))
            for g, (t, target) in pick.items():
                mask = groups == g
                q, s = _escalate(first, target, t, table, scores, costs, rows)
                quality[mask], spent[mask] = q[mask], s[mask]
            escalated = spent > costs[rows, first] + 1e-15
            out.append((lam, {},
                        {"quality": float(quality.mean()), "cost": float(spent.mean()),
                         "escalation-rate": float(escalated.mean()),
                         "calls-per-request": float(1.0 + escalated.mean())}))
        return out


def _escalate(first: npt.NDArray[np.int64], target: int, threshold: float, table: GateTable,
              scores: FloatArray, costs: FloatArray, rows: npt.NDArray[np.int64],
              ) -> tuple[FloatArray, FloatArray]:
    """Quality kept and cost paid per prompt when the answer of `first` is kept at gate
    probability >= `threshold` and otherwise `target` is called too (only when it is a
    later, costlier member than the first pick)."""
    members = list(table.single)  # cheapest first
    position = np.full(costs.shape[1], -1, dtype=np.int64)
    position[members] = np.arange(len(members))
    single = np.column_stack([table.single[j] for j in members])
    p = single[rows, position[first]]
    escalate = (position[first] < position[target]) & (p < threshold)
    quality = np.where(escalate, scores[rows, target], scores[rows, first])
    spent = costs[rows, first] + np.where(escalate, costs[rows, target], 0.0)
    return quality, spent


# The strategies the replay runs through `points` (a curve over λ, every call paid).
GatedStrategy = LearnedCascadeStrategy | PreRoutedCascadeStrategy
