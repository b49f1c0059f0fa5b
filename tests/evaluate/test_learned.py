"""The learned router trains on small synthetic data, saves plain arrays, and routes fast."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from taskroute.evaluate.calibrate import calibrate
from taskroute.evaluate.datasets import Dataset, Outcome, Record
from taskroute.evaluate.replay import evaluate
from taskroute.evaluate.strategies import make_strategy
from taskroute.evaluate.train import train
from taskroute.learned import LearnedRouter, pick_model


def synthetic(n: int = 300) -> Dataset:
    """The cheap model fails maths prompts; the dear one gets everything right."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        hard = bool(rng.uniform() < 0.4)
        text = f"compute integral of x^{i % 7} dx" if hard else f"name the capital city {i}"
        records.append(Record(str(i), text, {
            "cheap": Outcome(0.0 if hard else 1.0, cost=0.001),
            "dear": Outcome(1.0, cost=0.01)}))
    return Dataset.from_records(records)


def test_learned_router_learns_which_prompts_need_the_strong_model(tmp_path: Path) -> None:
    router = train(synthetic(), c=1.0)
    path = tmp_path / "r.npz"
    router.save(path)
    with zipfile.ZipFile(path) as z:  # plain npy arrays, no pickled objects
        assert all(name.endswith(".npy") for name in z.namelist())
    loaded = LearnedRouter.load(path)
    hard = loaded.predict("compute integral of x^3 dx")
    easy = loaded.predict("name the capital city 9")
    assert hard["cheap"] < 0.5 < easy["cheap"]
    assert loaded.choose("compute integral of x^3 dx", lam=1.0)[0] == "dear"
    assert loaded.choose("name the capital city 9", lam=1.0)[0] == "cheap"
    assert loaded.choose("name the capital city 9", candidates=["dear"])[0] == "dear"


def test_pick_model_target_and_lambda() -> None:
    probs, costs = np.array([0.6, 0.8, 0.9]), np.array([1.0, 2.0, 3.0])
    assert pick_model(probs, costs, target=0.75) == 1
    assert pick_model(probs, costs, target=0.95) == 2
    assert pick_model(probs, costs, lam=0.0) == 2
    assert pick_model(probs, costs, lam=1.0) == 0


def test_cv_learned_beats_random_on_synthetic() -> None:
    data = synthetic()
    results = {r.name: r.figures for r in evaluate(
        [make_strategy("random"), make_strategy("learned")], data, cv=3)}
    assert results["learned"]["APGR"] > 0.75 > results["random"]["APGR"]


def test_calibrate_hits_strong_share() -> None:
    probs = np.random.default_rng(0).uniform(size=(1000, 2))
    result = calibrate(probs, np.array([0.0, 1.0]), strong=[1], strong_share=0.2)
    assert result.strong_share == pytest.approx(0.2, abs=0.01)


def test_curve_spans_every_cost_and_always_stays_one_point() -> None:
    data = synthetic()
    learned, always = evaluate([make_strategy("learned", c=1.0), make_strategy("always:dear")],
                               data, cv=3)
    costs = [p.cost for p in learned.curve]
    # the λ grid runs from "best predicted quality" to "cheapest model everywhere"
    assert min(costs) == pytest.approx(0.001)
    assert max(p.quality for p in learned.curve) == pytest.approx(1.0)
    assert len({(p.cost, p.quality) for p in always.curve}) == 1
    assert always.curve[0].cost == pytest.approx(0.01)


def test_extreme_logits_do_not_overflow() -> None:
    router = train(synthetic(), c=1e6)
    with np.errstate(over="raise"):
        probs = router.predict("compute integral of x^3 dx " * 50)
    assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_families_same_features_in_training_and_after_loading(tmp_path: Path) -> None:
    from taskroute.evaluate.train import design_matrix, fit_featurizer
    from taskroute.learned.features import SHAPE_NAMES

    data = synthetic()
    assert train(data, c=1.0).featurizer.n_families == 0  # too few prompts for the default
    featurizer, vectorizer = fit_featurizer(data.texts, [None] * len(data), families=3)
    assert featurizer.n_families == 3
    x = design_matrix(featurizer, vectorizer, data.texts, [None] * len(data)).toarray()
    assert x.shape[1] == featurizer.n_text + featurizer.n_dense
    weights = np.random.default_rng(0).normal(size=(featurizer.n_dense, 2))
    for i in (0, 1, 7):  # the training rows are the inference features, block by block
        idx, values = featurizer.text_part(data.texts[i])
        row = np.zeros(featurizer.n_text)
        row[idx] = values
        dense = featurizer.dense_part(data.texts[i], None)
        assert np.allclose(x[i], np.concatenate([row, dense]))
        assert dense[len(featurizer.groups) + len(SHAPE_NAMES):][:3].sum() == 1.0  # one family
        # inference's shortcut gives the same logits as the full vector
        assert np.allclose(featurizer.dense_logits(data.texts[i], None, (idx, values), weights),
                           dense @ weights)
    router = train(data, c=1.0, families=3)
    path = tmp_path / "f.npz"
    router.save(path)
    loaded = LearnedRouter.load(path)
    assert loaded.featurizer.n_families == 3
    for text in ("compute integral of x^3 dx", "name the capital city 9", ""):
        assert np.allclose(loaded.predict_array(text), router.predict_array(text), atol=1e-5)
    assert loaded.choose("compute integral of x^3 dx", lam=1.0)[0] == "dear"


def test_features_read_a_bounded_window_and_groups_shortcut() -> None:
    from taskroute.evaluate.train import fit_featurizer
    from taskroute.learned.features import HEAD_CHARS, TAIL_CHARS, shape_features, tokens, window

    middle = "zebra " * 5000
    text = "alpha beta " + middle + "omega question?"
    assert len(window(text)) == HEAD_CHARS + TAIL_CHARS + 1
    words = tokens(text)
    assert "alpha" in words and "omega" in words and len(words) < 2 * (HEAD_CHARS + TAIL_CHARS)
    # lengths still count the whole prompt
    assert shape_features(text)[0] > shape_features(window(text))[0]
    data = synthetic()
    groups = ["maths" if i % 2 else "greetings" for i in range(len(data))]
    featurizer, _ = fit_featurizer(data.texts, groups, families=2)
    weights = np.random.default_rng(1).normal(size=(featurizer.n_dense, 3))
    for group in ("maths", "greetings", "unknown", None):
        part = featurizer.text_part(data.texts[3])
        assert np.allclose(featurizer.dense_logits(data.texts[3], group, part, weights),
                           featurizer.dense_part(data.texts[3], group) @ weights)
