"""Replay strategies over recorded outcomes and score them, on a test set or by K-fold CV.

Costs per model come from the data (mean recorded cost) or, when it has none, from the
training quality rank: the weakest model costs 0 and the strongest 1, so with two models the
knob is RouteLLM's strong-call share. Two-model metrics (APGR, CPT) are averaged over folds;
curves for plots use the pooled out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from taskroute.evaluate import metrics as M
from taskroute.evaluate.base import Strategy, folds, lambda_grid, model_costs
from taskroute.evaluate.cascade import CascadeStrategy, cascade_figures
from taskroute.evaluate.datasets import Dataset
from taskroute.evaluate.escalation import GatedStrategy
from taskroute.exceptions import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CurvePoint:
    knob: float
    cost: float
    quality: float


@dataclass
class StrategyScore:
    """One strategy's figures (fold means under CV) and its pooled curves."""

    name: str
    figures: dict[str, float] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)
    sweep: list[M.SweepPoint] = field(default_factory=list)


def choose(pred: FloatArray, costs: FloatArray, lam: float) -> IntArray:
    """Per prompt, argmax of pred − λ·cost; exact ties go to the cheaper model."""
    order = np.argsort(costs, kind="stable")
    utility = (pred - lam * costs)[:, order]
    return np.asarray(order[np.argmax(utility, axis=1)], dtype=np.int64)


def cost_quality_curve(pred: FloatArray, scores: FloatArray, costs: FloatArray,
                       record_costs: FloatArray) -> list[CurvePoint]:
    points = []
    rows = np.arange(len(pred))
    finite = pred[np.isfinite(pred)]
    span = float(finite.max() - finite.min()) if finite.size else 1.0
    for lam in lambda_grid(costs, span=span):
        picks = choose(pred, costs, lam)
        cost = np.where(np.isnan(record_costs[rows, picks]), costs[picks],
                        record_costs[rows, picks])
        points.append(CurvePoint(float(lam), float(cost.mean()),
                                 float(scores[rows, picks].mean())))
    return points


def _two_model_figures(pred: FloatArray, scores: FloatArray, costs: FloatArray,
                       seed: int) -> tuple[dict[str, float], list[M.SweepPoint]]:
    strong, weak = int(np.argmax(costs)), int(np.argmin(costs))
    jitter = np.random.default_rng(seed).uniform(0, 1e-9, len(pred))
    finite = np.nan_to_num(pred, posinf=1e12, neginf=-1e12)
    s_score = finite[:, strong] - finite[:, weak] + jitter
    s, w = scores[:, strong], scores[:, weak]
    sq, wq = float(s.mean()), float(w.mean())
    sweep = M.threshold_sweep(s_score, s, w)
    figures = {"APGR": M.apgr(sweep, sq, wq)}
    for p in (0.2, 0.5, 0.8):
        figures[f"CPT({int(p * 100)}%)"] = 100 * M.cpt(sweep, p, sq, wq)
    return figures, sweep


def _multi_figures(curve: Sequence[CurvePoint], scores: FloatArray, costs: FloatArray,
                   record_costs: FloatArray) -> dict[str, float]:
    """AIQ and the comparisons with the best single model (its cost: recorded where known)."""
    singles = scores.mean(axis=0)
    single_costs = np.where(np.isnan(record_costs), costs[None, :], record_costs).mean(axis=0)
    cs, qs = [p.cost for p in curve], [p.quality for p in curve]
    hull = M.nondecreasing_hull(cs, qs)
    best = int(np.argmax(singles))
    cost_range = (float(single_costs.min()), float(single_costs.max()))
    return {"AIQ": M.aiq(cs, qs, cost_range),
            "quality@best-cost": M.quality_at_cost(hull, float(single_costs[best])),
            "cost@best-quality": M.cost_at_quality(hull, float(singles[best])),
            "best-single-quality": float(singles[best]),
            "best-single-cost": float(single_costs[best]),
            "max-quality": float(hull[-1, 1])}


def score_split(strategy: Strategy, train: Dataset, test: Dataset, seed: int = 0,
                ) -> tuple[dict[str, float], FloatArray, FloatArray]:
    """Fit on train, predict test; figures plus the prediction matrix and the costs used."""
    strategy.fit(train)
    pred = strategy.predict(test)
    costs = model_costs(train)
    scores = np.nan_to_num(test.scores(), nan=0.0)
    record_costs = test.costs()
    curve = cost_quality_curve(pred, scores, costs, record_costs)
    figures = _multi_figures(curve, scores, costs, record_costs)
    if len(test.models) == 2:
        figures.update(_two_model_figures(pred, scores, costs, seed)[0])
    return figures, pred, costs


def _fold_means(per_fold: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each figure's mean over the folds. `cost@best-quality` is inf in a fold whose hull
    never reaches the best single model's quality: its mean is taken over the folds that
    reach it, and `reached-best-quality` says in how many of them (a share of folds)."""
    out: dict[str, float] = {}
    for key in per_fold[0]:
        values = np.array([f[key] for f in per_fold], dtype=float)
        finite = values[np.isfinite(values)]
        if key == "cost@best-quality":
            out["reached-best-quality"] = float(len(finite) / len(values))
            out[key] = float(finite.mean()) if finite.size else float("nan")
        else:
            out[key] = float(values.mean())
    return out


def _cascade_split(cascade: CascadeStrategy, train: Dataset, test: Dataset,
                   ) -> dict[str, float]:
    costs = model_costs(train)
    result = cascade.run(test, costs)
    scores = np.nan_to_num(test.scores(), nan=0.0)
    figures = cascade_figures(result, scores)
    point = [CurvePoint(0.0, figures["cost"], figures["quality"])]
    figures.update(_multi_figures(point, scores, costs, test.costs()))
    return figures


def evaluate(strategies: Iterable[Strategy | CascadeStrategy | GatedStrategy],
             data: Dataset, *,
             test: Dataset | None = None,
             cv: int = 0, seed: int = 0,
             progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
             ) -> list[StrategyScore]:
    """Score each strategy on `test` (trained on `data`) or by `cv`-fold cross-validation."""
    data = data.complete()
    if test is None and cv < 2:
        raise DataError("give a test set or --cv K with K >= 2", file=data.source)
    if test is not None:
        test = Dataset(test.records, data.models, test.source).complete()
        if set(test.models) != {m for r in test.records for m in r.outcomes}:
            raise DataError(f"test models {test.models} differ from {data.models}",
                            file=test.source)
        splits = [(data, test, np.arange(len(test)))]
        pooled = test
    else:
        parts = folds(len(data), cv, seed)
        splits = [(data.subset(np.setdiff1d(np.arange(len(data)), p)), data.subset(p), p)
                  for p in parts]
        pooled = data
    results = []
    for strategy in strategies:
        if isinstance(strategy, CascadeStrategy):
            results.append(_evaluate_cascade(strategy, splits, pooled, progress))
            continue
        if isinstance(strategy, GatedStrategy):
            results.append(_evaluate_learned_cascade(strategy, splits, progress))
            continue
        oof = np.zeros((len(pooled), len(pooled.models)))
        per_fold: list[dict[str, float]] = []
        costs = np.zeros(len(pooled.models))
        steps: Iterable[int] = range(len(splits))
        for i in progress(steps) if progress else steps:
            train_part, test_part, where = splits[i]
            figures, pred, costs = score_split(strategy, train_part, test_part, seed + i)
            oof[where] = pred
            per_fold.append(figures)
        result = StrategyScore(strategy.name)
        result.figures = _fold_means(per_fold)
        scores = np.nan_to_num(pooled.scores(), nan=0.0)
        result.curve = cost_quality_curve(oof, scores, costs, pooled.costs())
        if len(pooled.models) == 2:
            result.sweep = _two_model_figures(oof, scores, costs, seed)[1]
        results.append(result)
    return results


def _evaluate_cascade(cascade: CascadeStrategy,
                      splits: Sequence[tuple[Dataset, Dataset, IntArray]], pooled: Dataset,
                      progress: Callable[[Iterable[int]], Iterable[int]] | None,
                      ) -> StrategyScore:
    """The cascade has no knob: one (cost, quality) point per split, figures averaged."""
    per_fold: list[dict[str, float]] = []
    steps: Iterable[int] = range(len(splits))
    for i in progress(steps) if progress else steps:
        train_part, test_part, _ = splits[i]
        per_fold.append(_cascade_split(cascade, train_part, test_part))
    result = StrategyScore(cascade.name)
    result.figures = _fold_means(per_fold)
    result.curve = [CurvePoint(0.0, result.figures["cost"], result.figures["quality"])]
    return result


def _evaluate_learned_cascade(cascade: GatedStrategy,
                              splits: Sequence[tuple[Dataset, Dataset, IntArray]],
                              progress: Callable[[Iterable[int]], Iterable[int]] | None,
                              ) -> StrategyScore:
    """The learned cascade's knob is λ: one chain per λ, chosen on the training split; AIQ
    and the best-single comparisons read off its (cost, quality) points on the test split."""
    per_fold: list[dict[str, float]] = []
    curve: list[CurvePoint] = []
    steps: Iterable[int] = range(len(splits))
    for i in progress(steps) if progress else steps:
        train_part, test_part, _ = splits[i]
        cascade.fit(train_part)
        costs = model_costs(train_part)
        points = cascade.points(test_part, costs)
        fold_curve = [CurvePoint(lam, f["cost"], f["quality"]) for lam, _, f in points]
        scores = np.nan_to_num(test_part.scores(), nan=0.0)
        figures = _multi_figures(fold_curve, scores, costs, test_part.costs())
        top = points[0][2]  # λ = 0: the chain that maximises quality
        figures.update({"quality": top["quality"], "cost": top["cost"],
                        "escalation-rate": top["escalation-rate"],
                        "calls-per-request": top["calls-per-request"]})
        per_fold.append(figures)
        curve.extend(fold_curve)
    result = StrategyScore(cascade.name)
    result.figures = _fold_means(per_fold)
    result.curve = curve
    return result
