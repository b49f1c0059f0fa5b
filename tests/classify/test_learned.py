"""The shipped task classifier: sensible answers, bounded work, safe loading."""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import subprocess
import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from taskroute.classify import Classifier, LinearTaskClassifier, Prediction
from taskroute.classify.features import HEAD_CHARS, TAIL_CHARS, featurize
from taskroute.exceptions import DataError

ROOT = Path(__file__).resolve().parents[2]
TASKS = {
    "extraction", "classification", "summarization", "qa", "retrieval_qa", "transformation",
    "tool_use", "chat", "writing", "coding", "reasoning", "high_stakes",
}


@pytest.fixture(scope="module")
def clf() -> LinearTaskClassifier:
    return LinearTaskClassifier.bundled()


def _examples() -> list[dict[str, str]]:
    raw = resources.files("taskroute.data").joinpath("task_examples.jsonl").read_text("utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def _bundled_payload() -> dict[str, Any]:
    raw = resources.files("taskroute.data").joinpath("task_classifier.json").read_text("utf-8")
    payload: dict[str, Any] = json.loads(raw)
    return payload


# Clear prompts written for this test, none of them in the labelled data.
UNSEEN = [
    ("Extract the sender's name, the order number and the refund amount from this email:\n\n"
     "Hello, this is Priya Shah. Order 55-1209 arrived broken; I was refunded $42.10.",
     "extraction"),
    ("Classify the sentiment of this tweet as positive, negative or neutral: "
     "\"the new update is awful, nothing loads\"", "classification"),
    ("Summarize the following article in two sentences:\n\nThe regional rail operator "
     "announced on Monday that ticket prices will rise by 6% from September, citing energy "
     "costs. Commuter groups criticised the move and called for a price freeze.",
     "summarization"),
    ("Who discovered the structure of DNA?", "qa"),
    ("Using only the passage below, answer: how many employees does the firm have?\n\n"
     "Passage: Lumen Labs was founded in 2014 and now employs 85 people across two offices.",
     "retrieval_qa"),
    ("Convert this JSON to CSV with a header row:\n\n"
     "[{\"id\": 1, \"city\": \"Oslo\"}, {\"id\": 2, \"city\": \"Quito\"}]", "transformation"),
    ("Send a Slack message to the #design channel saying the mockups are ready.", "tool_use"),
    ("hey there, hope you're having a nice day!", "chat"),
    ("Write a Python function that returns the n-th Fibonacci number iteratively.", "coding"),
    ("If 3 painters paint 3 walls in 3 hours, how long do 9 painters need for 9 walls? "
     "Explain step by step.", "reasoning"),
    ("My child swallowed some bleach a few minutes ago. What should I do right now?",
     "high_stakes"),
]


def test_labelled_data_covers_every_class_with_at_least_sixty_examples() -> None:
    counts = Counter(row["task"] for row in _examples())
    assert set(counts) == TASKS
    assert min(counts.values()) >= 60


def test_bundled_model_knows_every_task_class(clf: LinearTaskClassifier) -> None:
    assert set(clf.classes) == TASKS
    assert isinstance(clf, Classifier)


def test_unseen_prompts_are_not_in_the_labelled_data() -> None:
    texts = {row["text"] for row in _examples()}
    assert not texts & {text for text, _ in UNSEEN}


@pytest.mark.parametrize(("text", "task"), UNSEEN, ids=[task for _, task in UNSEEN])
def test_predicts_the_obvious_class_for_unseen_prompts(
    clf: LinearTaskClassifier, text: str, task: str
) -> None:
    prediction = clf.predict(text)
    assert prediction.task == task, clf.probabilities(text)
    assert prediction.probability > 0.3


@pytest.mark.parametrize("text", ["", "   ", "?", "ok", "x" * 10, "日本語のテキスト 🚀"])
def test_probabilities_sum_to_one_and_prediction_is_the_most_likely(
    clf: LinearTaskClassifier, text: str
) -> None:
    probs = clf.probabilities(text)
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    prediction = clf.predict(text)
    assert isinstance(prediction, Prediction)
    assert prediction.task == max(probs, key=probs.__getitem__)
    assert prediction.probability == pytest.approx(probs[prediction.task])


def test_long_input_reads_only_its_head_and_tail(clf: LinearTaskClassifier) -> None:
    head = "Summarize the report below.\n" + "alpha beta gamma " * 200
    tail = "\nKeep it to three bullet points." + " delta" * 100
    middle_a = "the quick brown fox " * 5_000
    middle_b = ("completely different words appear here " * 5_000)[: len(middle_a)]
    a, b = head + middle_a + tail, head + middle_b + tail
    assert len(a) > 10 * (HEAD_CHARS + TAIL_CHARS)
    assert len(a) == len(b)
    assert featurize(a) == featurize(b)
    assert clf.probabilities(a) == clf.probabilities(b)


def test_long_input_stays_cheap(clf: LinearTaskClassifier) -> None:
    huge = "Here is our whole wiki, answer from it. " + "word " * 400_000  # ~2 MB
    clf.predict(huge)
    start = time.perf_counter()
    for _ in range(20):
        clf.predict(huge)
    per_call = (time.perf_counter() - start) / 20
    # Bounded: featurizing 2 MB in full would take far longer than this loose ceiling.
    assert per_call < 0.02


def test_predictions_are_identical_across_processes() -> None:
    """Scores must not depend on hash randomisation (the order a set iterates in)."""
    code = (
        "from taskroute.classify import LinearTaskClassifier as L; "
        "print(repr(L.bundled().probabilities('Extract the dates and names from this memo')))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_importing_the_classifier_pulls_in_no_numpy_or_sklearn() -> None:
    code = (
        "import sys; import taskroute.classify; "
        "from taskroute.classify import LinearTaskClassifier as L; L.bundled().predict('hi'); "
        "print(sorted(m for m in ('numpy', 'sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.strip() == "[]"


def test_from_file_reads_a_model_written_by_the_training_script(
    tmp_path: Path, clf: LinearTaskClassifier
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_bundled_payload()), encoding="utf-8")
    copy = LinearTaskClassifier.from_file(path)
    text = "Translate this paragraph into formal English."
    assert copy.classes == clf.classes
    assert copy.probabilities(text) == clf.probabilities(text)


def _write(tmp_path: Path, payload: Any) -> Path:
    path = tmp_path / "model.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), "utf-8")
    return path


def _broken(**changes: Any) -> dict[str, Any]:
    payload = _bundled_payload()
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        (_broken(format="something.else"), "field 'format'"),
        (_broken(format_version=99), "field 'format_version'"),
        (_broken(featurizer={"version": 999, "head_chars": 1, "tail_chars": 1}),
         "different featurizer"),
        (_broken(classes=[]), "field 'classes'"),
        (_broken(classes=["a", "a"] + ["x"] * 9), "field 'classes'"),
        (_broken(bias=[0.0]), "field 'bias'"),
        (_broken(weight_unit=-1), "field 'weight_unit'"),
        (_broken(weights={"hello": [1, 2]}), "field 'weights'"),
        (_broken(weights={"hello": ["1"] * 11}), "field 'weights'"),
        (_broken(weights=[]), "field 'weights'"),
    ],
    ids=["json", "not-object", "format", "version", "featurizer", "no-classes", "dup-classes",
         "bias", "unit", "row-length", "row-type", "weights-type"],
)
def test_from_file_refuses_a_bad_model_file_with_a_one_line_data_error(
    tmp_path: Path, payload: Any, expected: str
) -> None:
    path = _write(tmp_path, payload)
    with pytest.raises(DataError) as caught:
        LinearTaskClassifier.from_file(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_from_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read model file"):
        LinearTaskClassifier.from_file(tmp_path / "absent.json")


def test_from_file_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle must never be loaded")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"classes": ["a"], "bias": [0.0], "weights": {}}))
    with pytest.raises(DataError, match="looks like a pickle"):
        LinearTaskClassifier.from_file(path)


def _training_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "train_task_classifier", ROOT / "scripts" / "train_task_classifier.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pure_python_inference_reproduces_training_probabilities() -> None:
    pytest.importorskip("sklearn")
    train = _training_script()
    rows = _examples()[::3]  # a third of the data keeps this test quick
    texts = [row["text"] for row in rows]
    labels = [row["task"] for row in rows]
    feature_sets = [featurize(t) for t in texts]
    vocab, model = train.fit(feature_sets, labels, 30.0)
    weights, _ = train.export(vocab, model)
    clf = LinearTaskClassifier(
        [str(c) for c in model.classes_], [float(b) for b in model.intercept_], weights,
        weight_unit=train.WEIGHT_UNIT,
    )
    probes = [
        *texts[:5],
        "Rewrite this email in a warmer tone, please.",
        "What time is it in Tokyo right now? Look it up.",
    ]
    reference = model.predict_proba(vocab.matrix([featurize(t) for t in probes]))
    for text, expected in zip(probes, reference, strict=True):
        got = clf.probabilities(text)
        for k, task in enumerate(model.classes_):
            assert got[str(task)] == pytest.approx(float(expected[k]), abs=2e-3)
