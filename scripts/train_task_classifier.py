"""Train the task classifier that ships with taskroute.

    python scripts/train_task_classifier.py [--dolly ../shared/data/dolly-subset/dolly_train.jsonl]

Reads `taskroute/data/task_examples.jsonl` (hand-written) and, where it is present, the
human-written prompts of databricks-dolly-15k (`../shared/data/dolly-subset/`, CC BY-SA 3.0),
their categories mapped to task classes (`DOLLY_CLASSES`). Featurizes every text with
`taskroute.classify.features.featurize` (the same code inference runs) and reports:

* cross-source accuracy: trained on the hand-written examples only, scored per Dolly category;
* stratified 5-fold accuracy, per-class F1 and the confusion matrix on both sources together,
  for each candidate regularisation strength (chosen on out-of-fold log loss);
* calibration: one temperature fitted on the out-of-fold logits, folded into the weights, so
  that of the predictions at or above a confidence p about a share p is right (`min
  confidence` means what it says); the reliability table shows it.

Trains the chosen model on everything, prunes near-zero weights and writes
`taskroute/data/task_classifier.json` (plain JSON, never pickle), crediting Dolly when it
was used.

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dolly import DOLLY_CLASSES, HEADLINE, load_dolly  # noqa: E402

from taskroute.classify.features import (  # noqa: E402
    FEATURIZER_VERSION,
    HEAD_CHARS,
    TAIL_CHARS,
    feature_scale,
    featurize,
)

DATA = ROOT / "taskroute" / "data" / "task_examples.jsonl"
DOLLY = ROOT.parent / "shared" / "data" / "dolly-subset" / "dolly_train.jsonl"
DOLLY_CREDIT = ("includes prompts from databricks-dolly-15k, (c) Databricks, Inc., licensed "
                "CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/); this file is "
                "shared under the same licence")
TEMPERATURES = np.geomspace(0.25, 4.0, 81)
MODEL = ROOT / "taskroute" / "data" / "task_classifier.json"
C_GRID = (10.0, 30.0, 100.0, 300.0)
MIN_DF = 2
PRUNE_BELOW = 0.01
WEIGHT_UNIT = 1e-4  # weights are stored as integers in these units
FOLDS = 5
SEED = 0
CORRECTION_WEIGHT = 10.0  # a prompt a user corrected outweighs one generic example


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


def load_corrections(path: Path, known: set[str]) -> tuple[list[str], list[str]]:
    """Prompts from the gateway's log (`taskroute serve --log`, SQLite) whose feedback names the
    task class they really were (its `task`, else a text `task: <class>`:
    `taskroute.quality.feedback.feedback_task`), with that class; the latest feedback on a
    prompt wins."""
    from taskroute.store.logfile import is_log, read_rated_answers

    if not is_log(path):
        raise SystemExit(f"{path}: not a taskroute log (the SQLite file `taskroute serve` "
                         "writes)")
    named: dict[str, str] = {}
    for answer in read_rated_answers(path):
        task = answer.feedback_task
        if task is None:
            continue
        if task not in known:
            raise SystemExit(f"{path}: feedback names the task {task!r}, which the training "
                             f"data has no examples of; known: {', '.join(sorted(known))}")
        named[answer.prompt] = task
    return list(named), list(named.values())


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


def fit(feature_sets: Sequence[set[str]], labels: Sequence[str], c: float,
        weights: Sequence[float] | None = None) -> tuple[Vocabulary, LogisticRegression]:
    vocab = Vocabulary(feature_sets)
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(vocab.matrix(feature_sets), np.asarray(labels),
              sample_weight=None if weights is None else np.asarray(weights))
    return vocab, model


def cross_validate(
    feature_sets: Sequence[set[str]], labels: Sequence[str], classes: Sequence[str], c: float,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Out-of-fold logits for every example (vocabulary rebuilt inside each fold), columns
    in `classes` order."""
    y = np.asarray(labels)
    logits = np.zeros((len(labels), len(classes)))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    for train, test in folds.split(np.zeros(len(y)), y):
        vocab, model = fit([feature_sets[i] for i in train], y[train].tolist(), c,
                           None if weights is None else [weights[i] for i in train])
        assert list(model.classes_) == list(classes)
        logits[test] = model.decision_function(vocab.matrix([feature_sets[i] for i in test]))
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))


def fit_temperature(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    """The temperature that minimises out-of-fold log loss (a grid: one parameter)."""
    losses = [log_loss(labels, softmax(logits / t), labels=classes) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def reliability(proba: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> None:
    """For each confidence level: the share of predictions at or above it, and how many of
    those are right (calibrated: accuracy >= the level)."""
    top = proba.max(axis=1)
    right = np.asarray([classes[i] for i in proba.argmax(axis=1)]) == np.asarray(labels)
    print("confidence >=  share of prompts  accuracy there")
    for level in (0.3, 0.45, 0.6, 0.75, 0.9):
        sel = top >= level
        acc = float(right[sel].mean()) if sel.any() else float("nan")
        print(f"   {level:4.2f}        {sel.mean():6.1%}          {acc:6.1%}")


def cross_source(hand: tuple[list[set[str]], list[str]], dolly: tuple[list[set[str]], list[str]],
                 categories: Sequence[str], c: float) -> dict[str, float]:
    """Trained on the hand-written examples only, scored on Dolly: accuracy per category,
    on the six headline categories (`HEADLINE`) and on all."""
    vocab, model = fit(hand[0], hand[1], c)
    predicted = model.predict(vocab.matrix(dolly[0]))
    right = predicted == np.asarray(dolly[1])
    cats = np.asarray(categories)
    out = {cat: float(right[cats == cat].mean()) for cat in sorted(set(categories))}
    mapped = np.isin(cats, HEADLINE)
    out["mapped"] = float(right[mapped].mean())
    out["all"] = float(right.mean())
    return out


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
    parser.add_argument("--dolly", type=Path, default=DOLLY,
                        help="Dolly prompts to train and cross-check on (skipped when absent)")
    parser.add_argument("--no-dolly", action="store_true", help="hand-written examples only")
    parser.add_argument("--out", type=Path, default=MODEL)
    parser.add_argument("--C", type=float, dest="c", help="fix C instead of trying the grid")
    parser.add_argument("--corrections", type=Path, metavar="LOG",
                        help="the gateway's SQLite log: prompts whose feedback names their "
                        "class (its 'task', or a text 'task: <class>') are learned as that "
                        "class, each weighing "
                        f"{CORRECTION_WEIGHT:g} examples")
    parser.add_argument("--no-cv", action="store_true",
                        help="one fit at --C, no cross-validation or calibration (a quick "
                        "retrain, e.g. with --corrections)")
    args = parser.parse_args(argv)
    grid = (args.c,) if args.c else C_GRID
    if args.no_cv and not args.c:
        parser.error("--no-cv needs --C")

    hand_texts, hand_labels = load_examples(args.data)
    hand_sets = [featurize(t) for t in hand_texts]
    use_dolly = not args.no_dolly and args.dolly.is_file()
    dolly_texts, dolly_labels, categories = load_dolly(args.dolly) if use_dolly else ([], [], [])
    dolly_sets = [featurize(t) for t in dolly_texts]
    fixed_texts, fixed_labels = (load_corrections(args.corrections, set(hand_labels + dolly_labels))
                                 if args.corrections else ([], []))
    texts = hand_texts + dolly_texts + fixed_texts
    labels = hand_labels + dolly_labels + fixed_labels
    feature_sets = hand_sets + dolly_sets + [featurize(t) for t in fixed_texts]
    example_weights = ([1.0] * (len(hand_texts) + len(dolly_texts))
                       + [CORRECTION_WEIGHT] * len(fixed_texts))
    if fixed_texts:
        print(f"{len(fixed_texts)} corrections from {args.corrections}: "
              f"{dict(sorted(Counter(fixed_labels).items()))}")
    classes = sorted(set(labels))
    print(f"{len(hand_texts)} hand-written + {len(dolly_texts)} Dolly examples, {len(classes)} "
          f"classes: {dict(sorted(Counter(labels).items()))}")

    results: dict[float, tuple[float, float, np.ndarray]] = {}
    per_class: dict[str, Any] = {c: {"f1-score": float("nan")} for c in classes}
    dolly_fold: dict[str, float] = {}
    if args.no_cv:  # one fit at the given C, uncalibrated: a quick retrain (corrections)
        best_c, temperature, cv_accuracy, cv_log_loss = grid[0], 1.0, float("nan"), float("nan")
    else:
        # Candidates are compared on out-of-fold log loss, not accuracy alone: the router
        # thresholds on the probability (min_confidence), so it must be calibrated, too.
        for c in grid:
            started = time.perf_counter()
            logits = cross_validate(feature_sets, labels, classes, c, example_weights)
            temperature = fit_temperature(logits, labels, classes)
            proba = softmax(logits / temperature)
            acc = accuracy_score(labels, [classes[i] for i in proba.argmax(axis=1)])
            loss = log_loss(labels, proba, labels=classes)
            results[c] = (acc, loss, logits)
            print(f"C={c:<6g} {FOLDS}-fold CV accuracy {acc:.4f}  log loss {loss:.4f} (T="
                  f"{temperature:.2f})  ({time.perf_counter() - started:.1f}s)")
        best_c = min(grid, key=lambda c: (results[c][1], c))
        cv_accuracy, cv_log_loss, logits = results[best_c]
        temperature = fit_temperature(logits, labels, classes)
        proba = softmax(logits / temperature)
        predicted = [classes[i] for i in proba.argmax(axis=1)]

        print(f"\nchosen C={best_c:g}, temperature {temperature:.3f}; out-of-fold report:")
        report = classification_report(labels, predicted, labels=classes, digits=3,
                                       zero_division=0)
        print(report)
        per_class = classification_report(
            labels, predicted, labels=classes, output_dict=True, zero_division=0
        )
        print("confusion (rows = true, columns = predicted, same order):")
        print("  ".join(c[:6].rjust(6) for c in classes))
        matrix = confusion_matrix(labels, predicted, labels=classes)
        for name, row in zip(classes, matrix, strict=True):
            print("  ".join(str(n).rjust(6) for n in row), " ", name)
        print("\nreliability (out of fold, calibrated):")
        reliability(proba, labels, classes)
        if use_dolly:
            right = np.asarray(predicted[len(hand_texts):]) == np.asarray(dolly_labels)
            cats = np.asarray(categories)
            dolly_fold = {cat: float(right[cats == cat].mean())
                          for cat in sorted(set(categories))}
            dolly_fold["mapped"] = float(right[np.isin(cats, HEADLINE)].mean())
            print("\n5-fold accuracy on Dolly, per category: " + ", ".join(
                f"{k} {v:.3f}" for k, v in dolly_fold.items()))

    crossed: dict[str, float] = {}
    if use_dolly:
        crossed = cross_source((hand_sets, hand_labels), (dolly_sets, dolly_labels),
                               categories, best_c)
        print("\ncross-source (trained on the hand-written examples only, scored on Dolly):")
        for cat, acc in crossed.items():
            target = f" -> {DOLLY_CLASSES[cat]}" if cat in DOLLY_CLASSES else ""
            print(f"  {cat:24s}{target:17s} {acc:.3f}")

    vocab, model = fit(feature_sets, labels, best_c, example_weights)
    model.coef_ /= temperature  # calibrated: the temperature folded into the weights
    model.intercept_ /= temperature
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
        **({"licence": DOLLY_CREDIT} if use_dolly else {}),
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
            "hand_written_examples": len(hand_texts),
            "dolly_examples": len(dolly_texts),
            "corrections": len(fixed_texts),
            "dolly_classes": DOLLY_CLASSES if use_dolly else {},
            "temperature": round(temperature, 4),
            "cross_source_accuracy": {k: round(v, 4) for k, v in crossed.items()},
            "cv_accuracy_dolly": {k: round(v, 4) for k, v in dolly_fold.items()},
            "per_class": dict(sorted(Counter(labels).items())),
            "model": "multinomial logistic regression (scikit-learn lbfgs, L2)",
            "C": best_c,
            "min_df": MIN_DF,
            "prune_below": PRUNE_BELOW,
            "cv_folds": FOLDS,
            "cv_seed": SEED,
            "cv_accuracy": None if args.no_cv else round(float(cv_accuracy), 4),
            "cv_log_loss": None if args.no_cv else round(float(cv_log_loss), 4),
            "cv_accuracy_by_C": {str(c): round(float(results[c][0]), 4) for c in results},
            "cv_log_loss_by_C": {str(c): round(float(results[c][1]), 4) for c in results},
            "cv_f1": {} if args.no_cv else {c: round(float(per_class[c]["f1-score"]), 3)
                                            for c in classes},
            "parity_max_abs_diff": round(worst, 6),
            "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(["python scripts/train_task_classifier.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
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
