"""Train the task classifier that ships with taskroute.

    python scripts/train_task_classifier.py

Reads `taskroute/data/task_examples.jsonl`, featurizes every text with
`taskroute.classify.features.featurize` (the same code inference runs), reports stratified
5-fold cross-validated accuracy, per-class F1 and the confusion matrix for each candidate
regularisation strength, trains the best one on all examples, prunes near-zero weights and
writes `taskroute/data/task_classifier.json` (plain JSON, never pickle).

Needs the `eval` extra (numpy, scikit-learn); the package itself never imports them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskroute.classify.features import (  # noqa: E402
    FEATURIZER_VERSION,
    HEAD_CHARS,
    TAIL_CHARS,
    feature_scale,
    featurize,
)

DATA = ROOT / "taskroute" / "data" / "task_examples.jsonl"
MODEL = ROOT / "taskroute" / "data" / "task_classifier.json"
C_GRID = (10.0, 30.0, 100.0, 300.0)
MIN_DF = 2
PRUNE_BELOW = 0.01
WEIGHT_UNIT = 1e-4  # weights are stored as integers in these units
FOLDS = 5
SEED = 0


def load_examples(path: Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if not isinstance(item.get("text"), str) or not isinstance(item.get("task"), str):
            raise SystemExit(f"{path}: row {row}: needs string fields 'text' and 'task'")
        texts.append(item["text"])
        labels.append(item["task"])
    return texts, labels


class Vocabulary:
    """Feature → column, built from training folds only (features in >= MIN_DF texts)."""

    def __init__(self, feature_sets: Sequence[set[str]], min_df: int = MIN_DF) -> None:
        df = Counter(f for fs in feature_sets for f in fs)
        kept = sorted(f for f, n in df.items() if n >= min_df)
        self.index = {f: i for i, f in enumerate(kept)}

    def matrix(self, feature_sets: Sequence[set[str]]) -> csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, fs in enumerate(feature_sets):
            scale = feature_scale(len(fs))
            for f in fs:
                col = self.index.get(f)
                if col is not None:
                    rows.append(r)
                    cols.append(col)
                    vals.append(scale)
        shape = (len(feature_sets), len(self.index))
        return csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)


def fit(feature_sets: Sequence[set[str]], labels: Sequence[str], c: float) -> tuple[
    Vocabulary, LogisticRegression
]:
    vocab = Vocabulary(feature_sets)
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(vocab.matrix(feature_sets), np.asarray(labels))
    return vocab, model


def cross_validate(
    feature_sets: Sequence[set[str]], labels: Sequence[str], classes: Sequence[str], c: float
) -> np.ndarray:
    """Out-of-fold probabilities for every example (vocabulary rebuilt inside each fold),
    columns in `classes` order."""
    y = np.asarray(labels)
    proba = np.zeros((len(labels), len(classes)))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    for train, test in folds.split(np.zeros(len(y)), y):
        vocab, model = fit([feature_sets[i] for i in train], y[train].tolist(), c)
        assert list(model.classes_) == list(classes)
        proba[test] = model.predict_proba(vocab.matrix([feature_sets[i] for i in test]))
    return proba


def export(vocab: Vocabulary, model: LogisticRegression) -> tuple[dict[str, list[int]], int]:
    """Weights per feature (one integer per class, in WEIGHT_UNITs), weights under
    PRUNE_BELOW set to 0 and features left all-zero dropped. Integers keep the file small
    and make the sum at inference exact, so it cannot depend on set iteration order."""
    coef = model.coef_.T  # (features, classes)
    weights: dict[str, list[int]] = {}
    for feature, col in vocab.index.items():
        row = [round(float(w) / WEIGHT_UNIT) if abs(w) >= PRUNE_BELOW else 0 for w in coef[col]]
        if any(row):
            weights[feature] = row
    return weights, len(vocab.index) - len(weights)


def pure_python_probabilities(
    text: str, classes: Sequence[str], bias: Sequence[float], weights: dict[str, list[int]]
) -> list[float]:
    """The exported model evaluated the way inference evaluates it (for the parity check)."""
    features = featurize(text)
    scale = feature_scale(len(features)) * WEIGHT_UNIT
    totals = [0] * len(classes)
    for f in features:
        row = weights.get(f)
        if row is not None:
            for k, w in enumerate(row):
                totals[k] += w
    scores = [b + t * scale for b, t in zip(bias, totals, strict=True)]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=MODEL)
    args = parser.parse_args(argv)

    texts, labels = load_examples(args.data)
    classes = sorted(set(labels))
    feature_sets = [featurize(t) for t in texts]
    print(f"{len(texts)} examples, {len(classes)} classes: {dict(sorted(Counter(labels).items()))}")

    # Candidates are compared on out-of-fold log loss, not accuracy alone: the router
    # thresholds on the probability (min_confidence), so it must be calibrated, too.
    results: dict[float, tuple[float, float, list[str]]] = {}
    for c in C_GRID:
        started = time.perf_counter()
        proba = cross_validate(feature_sets, labels, classes, c)
        predicted = [classes[i] for i in proba.argmax(axis=1)]
        acc = accuracy_score(labels, predicted)
        loss = log_loss(labels, proba, labels=classes)
        results[c] = (acc, loss, predicted)
        print(f"C={c:<6g} {FOLDS}-fold CV accuracy {acc:.4f}  log loss {loss:.4f}"
              f"  ({time.perf_counter() - started:.1f}s)")
    best_c = min(C_GRID, key=lambda c: (results[c][1], c))
    cv_accuracy, cv_log_loss, predicted = results[best_c]

    print(f"\nchosen C={best_c:g}; out-of-fold report:")
    report = classification_report(labels, predicted, labels=classes, digits=3, zero_division=0)
    print(report)
    per_class = classification_report(
        labels, predicted, labels=classes, output_dict=True, zero_division=0
    )
    print("confusion (rows = true, columns = predicted, same order):")
    print("  ".join(c[:6].rjust(6) for c in classes))
    for name, row in zip(classes, confusion_matrix(labels, predicted, labels=classes), strict=True):
        print("  ".join(str(n).rjust(6) for n in row), " ", name)

    vocab, model = fit(feature_sets, labels, best_c)
    weights, pruned = export(vocab, model)
    bias = [round(float(b), 6) for b in model.intercept_]
    model_classes = [str(c) for c in model.classes_]

    # Parity: the exported, pruned, rounded model against scikit-learn's own probabilities.
    reference = model.predict_proba(vocab.matrix(feature_sets))
    worst = 0.0
    agree = 0
    for i, text in enumerate(texts):
        mine = pure_python_probabilities(text, model_classes, bias, weights)
        worst = max(worst, max(abs(a - b) for a, b in zip(mine, reference[i], strict=True)))
        agree += int(np.argmax(mine) == np.argmax(reference[i]))
    print(f"\nexport: {len(weights)} features kept, {pruned} dropped (every |w| < {PRUNE_BELOW})")
    print(f"parity vs scikit-learn: max |Δp| = {worst:.4f}, argmax agrees {agree}/{len(texts)}")

    payload: dict[str, Any] = {
        "format": "taskroute.linear_task_classifier",
        "format_version": 1,
        "featurizer": {
            "name": "taskroute.classify.features",
            "version": FEATURIZER_VERSION,
            "head_chars": HEAD_CHARS,
            "tail_chars": TAIL_CHARS,
            "value": "binary, scaled by 1/sqrt(number of features of the text)",
        },
        "classes": model_classes,
        "bias": bias,
        "weight_unit": WEIGHT_UNIT,
        "weights": weights,
        "training": {
            "examples": len(texts),
            "per_class": dict(sorted(Counter(labels).items())),
            "model": "multinomial logistic regression (scikit-learn lbfgs, L2)",
            "C": best_c,
            "min_df": MIN_DF,
            "prune_below": PRUNE_BELOW,
            "cv_folds": FOLDS,
            "cv_seed": SEED,
            "cv_accuracy": round(float(cv_accuracy), 4),
            "cv_log_loss": round(float(cv_log_loss), 4),
            "cv_accuracy_by_C": {str(c): round(float(results[c][0]), 4) for c in C_GRID},
            "cv_log_loss_by_C": {str(c): round(float(results[c][1]), 4) for c in C_GRID},
            "cv_f1": {c: round(float(per_class[c]["f1-score"]), 3) for c in classes},
            "parity_max_abs_diff": round(worst, 6),
            "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python scripts/train_task_classifier.py",
        },
    }
    args.out.write_text(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          f" ({size_kb:.0f} KiB), CV accuracy {cv_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
