"""The learned router at inference: plain arrays from one `.npz` file, numpy only.

    router = LearnedRouter.load("router.npz")
    model, probs = router.choose("What is 17 * 23?")            # default rule from training
    model, probs = router.choose(text, candidates=["a", "b"], task="math")
    probs = router.predict(text)                                  # {model: P(success)}

`choose` picks the model maximising P(success) − λ·cost (λ = `lam`, cost in the file's units,
usually USD per request), or, when `target` is set, the cheapest model whose P(success) clears
it (the most likely one when none does). The file holds only numeric and string arrays plus a
JSON header; it is read with `allow_pickle=False`.

A router trained with sentence embeddings (`taskroute train --embedder FOLDER`) adds the prompt's
vector times its own weights to the logits; it records the encoder's fingerprint and loads only
with that encoder: `LearnedRouter.load(path, embedder=SentenceEncoder(FOLDER))`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from taskroute.exceptions import ConfigError, DataError, UnknownModel
from taskroute.learned.features import SHAPE_NAMES, Featurizer

if TYPE_CHECKING:
    from taskroute.learned.embedding import Embedder

FloatArray = npt.NDArray[np.float64]
AnyFloatArray = npt.NDArray[np.floating[Any]]
# /3: features read a bounded window of the prompt; /1 and /2 files computed them over the
# whole prompt, so they would be fed features they were not trained on: retrain those.
FORMAT = "taskroute.learned/3"


@dataclass
class LearnedRouter:
    """Per-model logistic success models over shared prompt features."""

    models: tuple[str, ...]
    costs: FloatArray  # (m,) typical cost per request of each model
    featurizer: Featurizer
    text_weights: AnyFloatArray  # (n_text, m); float32 once loaded
    dense_weights: FloatArray  # (n_dense, m)
    bias: FloatArray  # (m,)
    lam: float = 0.0
    target: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    embed_weights: AnyFloatArray | None = None  # (dim, m) when trained with embeddings,
    embedder: Embedder | None = None  # and then the encoder they were trained with

    def __post_init__(self) -> None:
        if (self.embed_weights is None) != (self.embedder is None):
            raise ValueError("embedding weights and their encoder come together")

    # ------------------------------------------------------------------ inference
    def predict_array(self, text: str, task: str | None = None,
                      vector: AnyFloatArray | None = None) -> FloatArray:
        """P(success) per model; `vector` is the prompt's embedding when already computed."""
        idx, values = self.featurizer.text_part(text)
        logits = self.bias + values @ self.text_weights[idx]
        logits = logits + self.featurizer.dense_logits(text, task, (idx, values),
                                                       self.dense_weights)
        if self.embed_weights is not None and self.embedder is not None:
            if vector is None:
                vector = self.embedder.encode([text])[0]
            logits = logits + vector.astype(float) @ self.embed_weights
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -35.0, 35.0)))  # no overflow warnings

    def predict(self, text: str, task: str | None = None) -> dict[str, float]:
        """P(success) of every model on this prompt."""
        probs = self.predict_array(text, task)
        return {m: float(p) for m, p in zip(self.models, probs, strict=True)}

    def choose(self, text: str, candidates: Sequence[str] | None = None, *,
               task: str | None = None, lam: float | None = None,
               target: float | None = None) -> tuple[str, dict[str, float]]:
        """(chosen model, P(success) per candidate). Uses the saved λ/target unless given."""
        probs = self.predict_array(text, task)
        cols = self._columns(candidates)
        rule_target = target if target is not None else (None if lam is not None
                                                         else self.target)
        pick = pick_model(probs[cols], self.costs[cols],
                          lam=self.lam if lam is None else lam, target=rule_target)
        chosen = cols[pick]
        return self.models[chosen], {self.models[j]: float(probs[j]) for j in cols}

    def _columns(self, candidates: Sequence[str] | None) -> list[int]:
        if candidates is None:
            return list(range(len(self.models)))
        index = {m: j for j, m in enumerate(self.models)}
        cols = []
        for name in candidates:
            if name not in index:
                raise UnknownModel(name, self.models)
            cols.append(index[name])
        if not cols:
            raise UnknownModel("<none>", self.models)
        return cols

    # ------------------------------------------------------------------ storage
    def save(self, path: str | os.PathLike[str]) -> None:
        header = {"format": FORMAT, "models": list(self.models), "lam": self.lam,
                  "target": self.target, "groups": list(self.featurizer.groups),
                  "shape_names": list(SHAPE_NAMES), "info": self.info,
                  "embedder": self.embedder.fingerprint if self.embedder else None}
        extra: dict[str, Any] = {} if self.embed_weights is None else {
            "embed_weights": self.embed_weights}
        vocab = sorted(self.featurizer.vocabulary.items(), key=lambda kv: kv[1])
        with open(path, "wb") as handle:
            np.savez_compressed(
                handle, header=np.array(json.dumps(header)),
                vocabulary=np.array([t for t, _ in vocab], dtype=str),
                idf=self.featurizer.idf.astype(np.float32),
                shape_mean=self.featurizer.shape_mean, shape_scale=self.featurizer.shape_scale,
                family_terms=self.featurizer.family_terms.astype(np.int32),
                family_axes=self.featurizer.family_axes.astype(np.float16),  # fitted so
                family_centroids=self.featurizer.family_centroids,
                costs=self.costs, text_weights=self.text_weights.astype(np.float32),
                dense_weights=self.dense_weights, bias=self.bias, **extra)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *,
             embedder: Embedder | None = None) -> LearnedRouter:
        """Read a router file; one trained with embeddings needs its `embedder` (checked by
        fingerprint, so vectors from another model are never used)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"not a learned-router file: {exc}", file=str(path)) from exc
        try:
            header = json.loads(str(arrays["header"]))
            if header.get("format") != FORMAT:
                raise DataError(f"format {header.get('format')!r}, this taskroute reads "
                                f"{FORMAT!r}: retrain it with `taskroute train`", file=str(path))
            featurizer = Featurizer(
                vocabulary={t: i for i, t in enumerate(arrays["vocabulary"].tolist())},
                idf=arrays["idf"].astype(float), groups=tuple(header["groups"]),
                shape_mean=arrays["shape_mean"], shape_scale=arrays["shape_scale"],
                family_terms=arrays["family_terms"].astype(np.int64),
                # float32 holds the saved float16 exactly; products are taken in float64
                family_axes=arrays["family_axes"].astype(np.float32),
                family_centroids=arrays["family_centroids"].astype(float))
            wanted = header.get("embedder")
            if wanted is not None and embedder is None:
                raise ConfigError(f"{path}: this learned router was trained with sentence "
                                  f"embeddings ({wanted}); load it with that encoder "
                                  "(--embedder FOLDER)")
            if wanted is not None and embedder is not None and embedder.fingerprint != wanted:
                raise ConfigError(f"{path}: trained with the encoder {wanted}, "
                                  f"given {embedder.fingerprint}")
            return cls(tuple(header["models"]), arrays["costs"].astype(float), featurizer,
                       arrays["text_weights"], arrays["dense_weights"],  # float32: half the
                       # memory to pull through the cache per prompt; sums still in float64
                       arrays["bias"], float(header["lam"]), header["target"],
                       dict(header.get("info", {})),
                       arrays["embed_weights"].astype(float) if wanted else None,
                       embedder if wanted else None)
        except KeyError as exc:
            raise DataError("missing array or key", file=str(path), field=str(exc)) from exc


def pick_model(probs: FloatArray, costs: FloatArray, *, lam: float = 0.0,
               target: float | None = None) -> int:
    """Index of the model to use: cheapest clearing `target`, else max of P − λ·cost."""
    if target is not None:
        clear = np.flatnonzero(probs >= target)
        if clear.size:
            return int(clear[np.argmin(costs[clear])])
        return int(np.argmax(probs))
    utility = probs - lam * costs
    best = np.flatnonzero(utility >= utility.max() - 1e-12)
    return int(best[np.argmin(costs[best])])


def probabilities_table(router: LearnedRouter, texts: Sequence[str],
                        tasks: Sequence[str | None] | None = None) -> FloatArray:
    """(n, m) P(success) for many prompts (evaluation helper)."""
    groups: Sequence[str | None] = tasks if tasks is not None else [None] * len(texts)
    vectors: Sequence[AnyFloatArray | None] = [None] * len(texts)
    if router.embedder is not None:
        vectors = list(router.embedder.encode(list(texts)))  # batched: far cheaper
    return np.stack([router.predict_array(t, g, v)
                     for t, g, v in zip(texts, groups, vectors, strict=True)])

