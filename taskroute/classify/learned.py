"""The task classifier that ships with taskroute: a linear model over text features.

    clf = LinearTaskClassifier.bundled()          # the shipped model, read on first use
    clf.predict("Summarise this thread: ...")     # Prediction(task='summarization', ...)

The model file is plain JSON (`taskroute/data/task_classifier.json`) written by
`scripts/train_task_classifier.py`: class names, one bias per class, and for each known
feature one weight per class, as integers in units of `weight_unit` (integer sums are exact,
so a score never depends on the order a set happens to iterate in). Inference is pure
Python, no numpy: featurize (bounded to the head and tail of the text, see `features.py`),
add up the weight rows of the features the model knows, scale, softmax. Never loads pickle.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskroute.classify.base import Prediction
from taskroute.classify.features import (
    FEATURIZER_VERSION,
    HEAD_CHARS,
    TAIL_CHARS,
    feature_scale,
    featurize,
)
from taskroute.exceptions import DataError

if TYPE_CHECKING:
    from taskroute.policy.model import ClassifierSettings

__all__ = ["MODEL_FORMAT", "LinearTaskClassifier"]

MODEL_FORMAT = "taskroute.linear_task_classifier"
MODEL_FORMAT_VERSION = 1
BUNDLED_RESOURCE = "task_classifier.json"
_PICKLE_MAGIC = b"\x80"
RANKED = 4  # runners-up a prediction carries


@dataclass(frozen=True, slots=True)
class _Weights:
    classes: tuple[str, ...]
    bias: tuple[float, ...]
    unit: float
    rows: dict[str, tuple[int, ...]]


class LinearTaskClassifier:
    """Multinomial logistic regression over `featurize(text)`; implements `Classifier`."""

    __slots__ = ("_loader", "_lock", "_source", "_weights")

    def __init__(
        self,
        classes: Sequence[str],
        bias: Sequence[float],
        weights: Mapping[str, Sequence[int]],
        *,
        weight_unit: float = 1e-4,
        source: str = "<memory>",
    ) -> None:
        """A model from its parts: `weights[feature][k]` is the weight of `feature` for
        `classes[k]`, an integer in units of `weight_unit`."""
        payload = {
            "classes": list(classes), "bias": list(bias), "weight_unit": weight_unit,
            "weights": {f: list(row) for f, row in weights.items()},
        }
        self._source = source
        self._weights: _Weights | None = _parse_weights(payload, source)
        self._loader: Callable[[], _Weights] | None = None
        self._lock = threading.Lock()

    @classmethod
    def _lazy(cls, loader: Callable[[], _Weights], source: str) -> LinearTaskClassifier:
        self = cls.__new__(cls)
        self._source = source
        self._weights = None
        self._loader = loader
        self._lock = threading.Lock()
        return self

    @classmethod
    def bundled(cls) -> LinearTaskClassifier:
        """The model shipped in the package; its file is read on the first prediction."""
        return _bundled()

    @classmethod
    def from_file(cls, path: str | Path) -> LinearTaskClassifier:
        """A model written by the training script. A bad file raises `DataError` now."""
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read model file: {exc.strerror or exc}", file=source) from None
        weights = _decode(raw, source)
        return cls._lazy(lambda: weights, source)._loaded_self()

    def _loaded_self(self) -> LinearTaskClassifier:
        self._model()
        return self

    def _model(self) -> _Weights:
        weights = self._weights
        if weights is None:
            with self._lock:
                if self._weights is None:
                    assert self._loader is not None
                    self._weights = self._loader()
                weights = self._weights
        return weights

    @property
    def classes(self) -> tuple[str, ...]:
        """The task classes this model can answer, in the model's order."""
        return self._model().classes

    @property
    def source(self) -> str:
        return self._source

    def scores(self, text: str) -> list[float]:
        """Raw linear scores (logits), one per class in `classes` order."""
        model = self._model()
        features = featurize(text)
        rows = list(filter(None, map(model.rows.get, features)))
        if not rows:
            return list(model.bias)
        scale = feature_scale(len(features)) * model.unit
        columns = zip(*rows, strict=True)  # one column of weights per class
        return [b + sum(col) * scale for b, col in zip(model.bias, columns, strict=True)]

    def probabilities(self, text: str) -> dict[str, float]:
        """Softmax probability of every class."""
        return dict(zip(self._model().classes, _softmax(self.scores(text)), strict=True))

    def predict(self, text: str) -> Prediction:
        probs = _softmax(self.scores(text))
        ranked = sorted(zip(self._model().classes, probs, strict=True),
                        key=lambda kv: kv[1], reverse=True)[:RANKED]
        return Prediction(task=ranked[0][0], probability=ranked[0][1], ranked=tuple(ranked))

    def __repr__(self) -> str:
        return f"LinearTaskClassifier(source={self._source!r})"


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def build(settings: ClassifierSettings) -> LinearTaskClassifier:
    """The `linear` classifier (registered in `taskroute.plugins.CLASSIFIERS`): the policy's
    `model file`, or the bundled model."""
    if settings.options:
        raise ValueError(f"the linear classifier takes no options, got "
                         f"{', '.join(k.replace('_', ' ') for k in settings.options)}")
    if settings.model_file:
        return LinearTaskClassifier.from_file(settings.model_file)
    return LinearTaskClassifier.bundled()


@cache
def _bundled() -> LinearTaskClassifier:
    return LinearTaskClassifier._lazy(_load_bundled, f"taskroute/data/{BUNDLED_RESOURCE}")


def _load_bundled() -> _Weights:
    source = f"taskroute/data/{BUNDLED_RESOURCE}"
    try:
        raw = resources.files("taskroute.data").joinpath(BUNDLED_RESOURCE).read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        raise DataError(f"the bundled classifier is missing: {exc}", file=source) from None
    return _decode(raw, source)


def _decode(raw: bytes, source: str) -> _Weights:
    if raw.startswith(_PICKLE_MAGIC):
        raise DataError("looks like a pickle; only JSON model files are loaded", file=source)
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 JSON model file", file=source) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=source, row=exc.lineno) from None
    if not isinstance(payload, dict):
        raise DataError("expected a JSON object at the top level", file=source)
    _check_header(payload, source)
    return _parse_weights(payload, source)


def _check_header(payload: Mapping[str, Any], source: str) -> None:
    if payload.get("format") != MODEL_FORMAT:
        raise DataError(f"expected {MODEL_FORMAT!r}", file=source, field="format")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise DataError(
            f"expected {MODEL_FORMAT_VERSION}, got {payload.get('format_version')!r}",
            file=source, field="format_version",
        )
    featurizer = payload.get("featurizer")
    expected = {"version": FEATURIZER_VERSION, "head_chars": HEAD_CHARS, "tail_chars": TAIL_CHARS}
    if not isinstance(featurizer, dict) or any(
        featurizer.get(k) != v for k, v in expected.items()
    ):
        raise DataError(
            f"trained with a different featurizer (this taskroute has version "
            f"{FEATURIZER_VERSION}); retrain with scripts/train_task_classifier.py",
            file=source, field="featurizer",
        )


def _parse_weights(payload: Mapping[str, Any], source: str) -> _Weights:
    classes = payload.get("classes")
    if (
        not isinstance(classes, list) or not classes
        or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)
    ):
        raise DataError("expected a non-empty list of distinct names", file=source, field="classes")
    n = len(classes)
    bias = payload.get("bias")
    if not isinstance(bias, list) or not _is_vector(bias, n):
        raise DataError(f"expected {n} numbers, one per class", file=source, field="bias")
    unit = payload.get("weight_unit")
    if not _is_vector([unit], 1) or not unit or unit <= 0:
        raise DataError("expected a positive number", file=source, field="weight_unit")
    weights = payload.get("weights")
    if not isinstance(weights, dict):
        raise DataError("expected an object of feature -> weights", file=source, field="weights")
    rows = {feature: tuple(row) for feature, row in weights.items() if type(row) is list}
    bad = len(rows) != len(weights) or any(len(row) != n for row in rows.values())
    if bad or {type(w) for row in rows.values() for w in row} - {int}:
        raise DataError(
            f"expected a list of {n} integers per feature, one per class",
            file=source, field="weights",
        )
    return _Weights(tuple(classes), tuple(float(b) for b in bias), float(unit), rows)


def _is_vector(value: object, n: int) -> bool:
    return (
        isinstance(value, list) and len(value) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) for v in value)
    )
