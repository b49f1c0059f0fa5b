"""Metric code against hand-computed cases, ties, and the random router's expected figures."""

from __future__ import annotations

import numpy as np
import pytest

from taskroute.evaluate import metrics as M


def test_perfect_ranking_curve_hand_computed() -> None:
    # 4 prompts: strong gains only on prompt 0; weak quality 0.5, strong 0.75
    strong = np.array([1.0, 1.0, 0.0, 1.0])
    weak = np.array([0.0, 1.0, 0.0, 1.0])
    scores = np.array([0.9, 0.1, 0.2, 0.3])
    dense = M.dense_curve(scores, strong, weak)
    assert [(p.strong_share, p.quality) for p in dense] == [
        (0.0, 0.5), (0.25, 0.75), (0.5, 0.75), (0.75, 0.75), (1.0, 0.75)]
    # area: 0.25*(0.5+0.75)/2 + 0.75*0.75 = 0.71875; APGR = (0.71875-0.5)/(0.25) = 0.875
    assert M.apgr(dense, 0.75, 0.5) == pytest.approx(0.875)
    # PGR 0.5 reached halfway through the first segment
    assert M.cpt(dense, 0.5, 0.75, 0.5) == pytest.approx(0.125)


def test_tied_scores_move_together() -> None:
    strong = np.array([1.0, 0.0, 1.0, 1.0])
    weak = np.zeros(4)
    dense = M.dense_curve(np.array([0.5, 0.5, 0.5, 0.1]), strong, weak)
    assert [p.strong_share for p in dense] == [0.0, 0.75, 1.0]
    assert dense[1].quality == pytest.approx(0.5)


def test_threshold_sweep_spans_all_shares_like_routellm() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=1000)
    sweep = M.threshold_sweep(scores, np.ones(1000), np.zeros(1000))
    shares = [p.strong_share for p in sweep]
    assert len(sweep) == 11 and shares[0] == 0.0 and shares[-1] == 1.0
    assert np.allclose(shares, np.linspace(0, 1, 11), atol=0.002)


def test_random_router_expected_apgr_and_cpt() -> None:
    rng = np.random.default_rng(1)
    n = 14037
    strong = (rng.uniform(size=n) < 0.806).astype(float)
    weak = (rng.uniform(size=n) < 0.681).astype(float)
    apgrs, cpts = [], []
    for seed in range(20):
        scores = np.random.default_rng(100 + seed).uniform(size=n)
        sweep = M.threshold_sweep(scores, strong, weak)
        sq, wq = strong.mean(), weak.mean()
        apgrs.append(M.apgr(sweep, sq, wq))
        cpts.append(M.cpt(sweep, 0.5, sq, wq))
    # published random router: APGR 0.500, CPT(50%) 50.07 %
    assert np.mean(apgrs) == pytest.approx(M.random_strategy_apgr(), abs=0.01)
    assert np.mean(cpts) == pytest.approx(0.5007, abs=0.02)


def test_oracle_cpt_matches_published_shape() -> None:
    # 10 prompts, 2 where only strong is right, 1 where only weak is: net gain 1/10
    strong = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1], dtype=float)
    weak = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1], dtype=float)
    gain = strong - weak
    dense = M.dense_curve(gain, strong, weak)
    assert max(p.quality for p in dense) == pytest.approx(0.8)
    assert M.cpt(dense, 0.5, strong.mean(), weak.mean()) == pytest.approx(0.05)


def test_nondecreasing_hull_drops_dominated_and_falling_points() -> None:
    hull = M.nondecreasing_hull([0, 1, 2, 3, 4], [0.2, 0.3, 0.7, 0.6, 0.7])
    assert hull.tolist() == [[0.0, 0.2], [2.0, 0.7]]


def test_aiq_hand_computed_and_extended_flat() -> None:
    # hull (0,0.2)-(2,0.7), flat to 4: area 2*0.45 + 2*0.7 = 2.3; /4 = 0.575
    assert M.aiq([0, 2, 4], [0.2, 0.7, 0.5]) == pytest.approx(0.575, abs=1e-4)
    # a single model's point: zero below its cost, flat after it
    assert M.aiq([2.0], [0.5], cost_range=(0.0, 4.0)) == pytest.approx(0.25, abs=1e-3)


def test_quality_and_cost_read_off_the_hull() -> None:
    hull = M.nondecreasing_hull([0, 2], [0.2, 0.6])
    assert M.quality_at_cost(hull, 1.0) == pytest.approx(0.4)
    assert M.cost_at_quality(hull, 0.5) == pytest.approx(1.5)
    assert M.cost_at_quality(hull, 0.9) == float("inf")


def test_quality_at_cost_tolerates_rounding_at_the_cheapest_vertex() -> None:
    from taskroute.evaluate.metrics import nondecreasing_hull, quality_at_cost

    hull = nondecreasing_hull([2.559e-4], [0.5626])
    assert quality_at_cost(hull, 2.559e-4 * (1 - 1e-13)) == 0.5626
    assert quality_at_cost(hull, 2.0e-4) == 0.0
