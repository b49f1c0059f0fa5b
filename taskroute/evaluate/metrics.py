"""The field's routing metrics, computed exactly as their papers' code does.

Two models (RouteLLM, arXiv 2406.18665, `routellm/evals`):
  * `threshold_sweep`: thresholds at the 11 quantiles of the strategy's strong-model scores
    (`pd.qcut(scores, 10)` bin edges); a prompt goes to the strong model when its score is
    >= the threshold (> for the last one, so the sweep ends at 0 % strong calls).
  * PGR(x) = (quality(x) − weak) / (strong − weak).
  * APGR = trapezoid area under quality over strong-call share, normalised the same way.
  * CPT(p) = `np.interp(weak + p·(strong − weak), qualities, shares)` over points sorted by share.
  * `dense_curve`: every distinct threshold (ties move together), for plots.

Any number of models (RouterBench, arXiv 2403.12031):
  * `nondecreasing_hull`: the upper convex hull of (cost, quality) points, cut where quality
    stops rising; `aiq`: its area, extended flat to the largest cost, over the cost range.
  * `quality_at_cost`, `cost_at_quality`: read off the hull.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SweepPoint:
    threshold: float
    strong_share: float  # 0..1
    quality: float


def _route_quality(selection: npt.NDArray[np.bool_], strong: FloatArray,
                   weak: FloatArray) -> float:
    return float(np.where(selection, strong, weak).mean())


def threshold_sweep(scores: FloatArray, strong: FloatArray, weak: FloatArray,
                    n_bins: int = 10) -> list[SweepPoint]:
    """RouteLLM's sweep: n_bins + 1 quantile thresholds, sorted by strong-call share."""
    scores = np.asarray(scores, dtype=float)
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1))
    points = []
    for i, threshold in enumerate(thresholds):
        sel = scores >= threshold if i != len(thresholds) - 1 else scores > threshold
        points.append(SweepPoint(float(threshold), float(sel.mean()),
                                 _route_quality(sel, strong, weak)))
    points.sort(key=lambda p: (p.strong_share, p.quality))
    return points


def dense_curve(scores: FloatArray, strong: FloatArray, weak: FloatArray) -> list[SweepPoint]:
    """Every achievable (share, quality) point: prompts sent strong in order of falling score,
    tied scores together. Starts at 0 % and ends at 100 % strong calls."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    gain = (np.asarray(strong, dtype=float) - np.asarray(weak, dtype=float))[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    base = float(np.mean(weak))
    sorted_scores = scores[order]
    # cut only where the next score differs: ties cannot be split by any threshold
    cuts = [0] + [k for k in range(1, n) if sorted_scores[k] != sorted_scores[k - 1]] + [n]
    points = []
    for k in cuts:
        thr = float(sorted_scores[k - 1]) if k > 0 else float("inf")
        points.append(SweepPoint(thr, k / n, base + float(cum[k]) / n))
    return points


def pgr(quality: float, strong_quality: float, weak_quality: float) -> float:
    return (quality - weak_quality) / (strong_quality - weak_quality)


def apgr(points: Sequence[SweepPoint], strong_quality: float, weak_quality: float) -> float:
    """Area under the PGR curve over strong-call share (trapezoid), as RouteLLM computes it."""
    x = np.array([p.strong_share for p in points])
    y = np.array([p.quality for p in points])
    span = float(x[-1] - x[0])
    if span <= 0 or strong_quality == weak_quality:
        return float("nan")  # undefined: no share range, or nothing to gain
    auc = float(np.trapezoid(y, x))
    weak_auc, strong_auc = weak_quality * span, strong_quality * span
    return (auc - weak_auc) / (strong_auc - weak_auc)


def cpt(points: Sequence[SweepPoint], target_pgr: float, strong_quality: float,
        weak_quality: float) -> float:
    """Strong-call share (0..1) needed for PGR = target, by RouteLLM's `np.interp`."""
    x = np.array([p.strong_share for p in points])
    y = np.array([p.quality for p in points])
    if strong_quality == weak_quality:
        return float("nan")
    goal = weak_quality + target_pgr * (strong_quality - weak_quality)
    return float(np.interp(goal, y, x))


def random_strategy_apgr() -> float:
    """Expected APGR of a strategy that picks the strong model at random: the curve is the
    straight line from weak to strong quality, so the normalised area is exactly 1/2."""
    return 0.5


# ---------------------------------------------------------------- any number of models


def nondecreasing_hull(costs: Sequence[float], qualities: Sequence[float]) -> FloatArray:
    """Vertices (k, 2) of the upper convex hull of the points, from the cheapest point up to
    the best quality, with quality non-decreasing in cost."""
    pts = sorted(set(zip((float(c) for c in costs), (float(q) for q in qualities),
                         strict=True)))
    if not pts:
        raise ValueError("no points")
    # keep the best quality per cost, then Andrew's monotone chain (upper hull)
    best: dict[float, float] = {}
    for c, q in pts:
        best[c] = max(q, best.get(c, -np.inf))
    hull: list[tuple[float, float]] = []
    for c, q in sorted(best.items()):
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (c2 - c1) * (q - q1) - (q2 - q1) * (c - c1) >= 0:  # hull[-1] not above chord
                hull.pop()
            else:
                break
        hull.append((c, q))
    top = int(np.argmax([q for _, q in hull]))
    return np.array(hull[: top + 1], dtype=float)


def aiq(costs: Sequence[float], qualities: Sequence[float],
        cost_range: tuple[float, float] | None = None) -> float:
    """RouterBench's Average Improvement in Quality: area under the non-decreasing convex hull,
    extended flat to the largest cost, divided by the cost range. `cost_range` defaults to the
    points' own; below a strategy's cheapest point it scores zero quality."""
    hull = nondecreasing_hull(costs, qualities)
    lo, hi = cost_range if cost_range is not None else (min(costs), max(costs))
    if hi <= lo:
        return float(hull[-1, 1])
    grid = np.linspace(lo, hi, 4001)
    return float(np.trapezoid(_hull_at(hull, grid), grid) / (hi - lo))


def _hull_at(hull: FloatArray, cost: FloatArray) -> FloatArray:
    # a cost equal to the cheapest vertex up to rounding (means summed in another order)
    # counts as reaching it
    lo = float(hull[0, 0])
    cost = np.where(np.abs(cost - lo) <= 1e-9 * max(abs(lo), 1e-300), lo, cost)
    values = np.interp(cost, hull[:, 0], hull[:, 1], left=0.0, right=float(hull[-1, 1]))
    values[cost < lo] = 0.0
    return values.astype(float)


def quality_at_cost(hull: FloatArray, cost: float) -> float:
    """Quality the hull reaches at the given cost (0 below its cheapest point)."""
    return float(_hull_at(hull, np.array([cost]))[0])


def cost_at_quality(hull: FloatArray, quality: float) -> float:
    """Least cost on the hull reaching the quality; inf when it never does."""
    if quality > hull[-1, 1] + 1e-12:  # a mean summed in another order may differ by ulps
        return float("inf")
    quality = min(quality, float(hull[-1, 1]))
    if quality <= hull[0, 1]:
        return float(hull[0, 0])
    return float(np.interp(quality, hull[:, 1], hull[:, 0]))
