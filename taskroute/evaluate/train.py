"""Training the learned router (needs scikit-learn from the `taskroute[eval]` extra).

One logistic regression per model over shared features (see `taskroute.learned.features`),
predicting P(success). Fractional scores are fitted as weighted positive and negative copies.
The regularisation C is chosen on the training data only: a held-out fifth of it, by mean
log-loss over the models, unless given (`--C`). Fitting uses liblinear, which keeps a
whole 5-fold evaluation of the 14k-prompt MMLU set to a few minutes on 2 cores.

With at least FAMILIES × MIN_PER_FAMILY prompts, the features include prompt families:
k-means (k = FAMILIES) over the TF-IDF's leading FAMILY_AXES SVD axes plus the shape numbers
(see `taskroute.learned.features`). Chosen by 5-fold CV on the nine-model train.json only:
AIQ 0.634 -> 0.643 (better in every fold); neutral on MMLU (inner CV, APGR 0.690 both).
Keeping the projection for only FAMILY_TERMS terms costs little (`taskroute eval` 5-fold on
train.json: AIQ 0.6401 with every term, 0.6395 with 16,384, 0.6380 with 4,096) and cuts the
MMLU router file from 8.4 MB to 2.7 MB.

With an `embedder` (taskroute.learned.embedding), the prompt's sentence vector joins the
features as it is (unit length next to the unit-length TF-IDF row). On the shared sets it does
not help (bench/eval_embedding.py, all-MiniLM-L6-v2: MMLU 5-fold APGR 0.697 vs 0.708 without,
nine-model AIQ 0.580 vs 0.582; multilingual-e5-small did no better on MMLU's training folds),
and it costs ~20 ms per prompt, so it stays an offline option for data where meaning matters
more than wording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.datasets import Dataset, Record
from taskroute.learned.features import (
    FAMILY_SHAPE_WEIGHT,
    SHAPE_NAMES,
    Featurizer,
    shape_features,
    tokens,
)
from taskroute.learned.model import LearnedRouter

if TYPE_CHECKING:
    from taskroute.learned.embedding import Embedder

FloatArray = npt.NDArray[np.float64]
C_GRID: tuple[float, ...] = (0.5, 1.0, 2.0)
FAMILIES = 16
FAMILY_AXES = 32
FAMILY_TERMS = 16384
MIN_PER_FAMILY = 25


def require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "training the learned router needs scikit-learn: pip install 'taskroute[eval]'"
        ) from exc


def group_of(record: Record) -> str | None:
    """The categorical context a record carries: its task class, else its subject."""
    if record.task:
        return record.task
    subject = record.meta.get("subject")
    return subject if isinstance(subject, str) else None


def fit_featurizer(texts: Sequence[str], groups: Sequence[str | None],
                   min_df: int = 2, families: int | None = None) -> tuple[Featurizer, Any]:
    """Featurizer fitted on the texts, and the sklearn vectorizer that mirrors it.
    `families`: k-means families (default FAMILIES when there are enough texts, 0 = none)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=tokens, min_df=min_df, sublinear_tf=True)
    x_text = vectorizer.fit_transform(texts)
    shapes = np.array([shape_features(t) for t in texts])
    mean, scale = shapes.mean(axis=0), shapes.std(axis=0)
    scale[scale == 0] = 1.0
    if families is None:
        families = FAMILIES if len(texts) >= FAMILIES * MIN_PER_FAMILY else 0
    terms, axes = np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    centroids = np.zeros((0, 0))
    if families > 0 and x_text.shape[1] > 2:
        terms, axes, centroids = fit_families(x_text, (shapes - mean) / scale, families)
    names = tuple(sorted({g for g in groups if g is not None}))
    featurizer = Featurizer(dict(vectorizer.vocabulary_), vectorizer.idf_.astype(float),
                            names, mean, scale, terms, axes, centroids)
    return featurizer, vectorizer


def fit_families(x_text: Any, shapes: FloatArray, k: int,
                 ) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    """(the terms kept, their SVD axes (terms, d), k-means centroids (k, d + n_shape)) for
    `Featurizer.family_of`. Only the FAMILY_TERMS terms with the largest loadings are kept:
    the rest barely move a projection, and a full (vocabulary × d) table would be most of
    the file."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD

    dims = min(FAMILY_AXES, x_text.shape[1] - 1)
    axes = TruncatedSVD(dims, random_state=0).fit(x_text).components_.T
    terms = np.sort(np.argsort(-np.linalg.norm(axes, axis=1), kind="stable")[:FAMILY_TERMS])
    axes = axes[terms].astype(np.float16).astype(float)  # as saved: same numbers after loading
    z = np.asarray(x_text[:, terms] @ axes)
    z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)
    points = np.hstack([z, FAMILY_SHAPE_WEIGHT * shapes])
    centroids = KMeans(k, n_init=4, random_state=0).fit(points).cluster_centers_
    return terms.astype(np.int64), axes, np.asarray(centroids, dtype=float)


def design_matrix(featurizer: Featurizer, vectorizer: Any, texts: Sequence[str],
                  groups: Sequence[str | None], vectors: Any = None) -> Any:
    from scipy.sparse import csr_matrix, hstack  # type: ignore[import-untyped]

    dense = np.stack([featurizer.dense_part(t, g) for t, g in zip(texts, groups, strict=True)])
    if vectors is not None:
        dense = np.hstack([dense, np.asarray(vectors, dtype=float)])
    return hstack([vectorizer.transform(texts), csr_matrix(dense)]).tocsr()


def _fit_one(x: Any, y: FloatArray, c: float) -> tuple[FloatArray, float]:
    from scipy.sparse import vstack
    from sklearn.linear_model import LogisticRegression

    # liblinear (dual coordinate descent) is 2-4x faster than lbfgs on these sparse designs
    # with the same fit up to the (lightly penalised, scaled) intercept
    clf = LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000)
    fractional = bool(np.any((y > 0) & (y < 1)))
    if len(np.unique(y)) < 2:
        prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        return np.zeros(x.shape[1]), float(np.log(prior / (1 - prior)))
    if fractional:
        xx = vstack([x, x]).tocsr()
        yy = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
        clf.fit(xx, yy, sample_weight=np.concatenate([y, 1 - y]) + 1e-9)
    else:
        clf.fit(x, (y >= 0.5).astype(int))
    return clf.coef_[0].astype(float), float(clf.intercept_[0])


def _log_loss(p: FloatArray, y: FloatArray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_c(x: Any, scores: FloatArray, seed: int = 0) -> float:
    """Regularisation picked on a held-out fifth of the training data."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(x.shape[0])
    cut = x.shape[0] // 5
    held, fit = order[:cut], order[cut:]
    losses = []
    for c in C_GRID:
        loss = 0.0
        for j in range(scores.shape[1]):
            w, b = _fit_one(x[fit], scores[fit, j], c)
            loss += _log_loss(1 / (1 + np.exp(-(x[held] @ w + b))), scores[held, j])
        losses.append(loss)
    return C_GRID[int(np.argmin(losses))]


def train(dataset: Dataset, *, c: float | None = None, lam: float = 0.0,
          target: float | None = None, families: int | None = None,
          embedder: Embedder | None = None,
          progress: Callable[[str], None] | None = None) -> LearnedRouter:
    """Fit the learned router on every complete record of `dataset`."""
    require_sklearn()
    data = dataset.complete()
    texts = data.texts
    groups = [group_of(r) for r in data.records]
    scores = data.scores()
    featurizer, vectorizer = fit_featurizer(texts, groups, families=families)
    vectors = None
    if embedder is not None:
        if progress is not None:
            progress(f"embedding {len(texts)} prompts")
        vectors = embedder.encode(texts)
    x = design_matrix(featurizer, vectorizer, texts, groups, vectors)
    if c is None:
        c = choose_c(x, scores)
    n_text, n_dense = featurizer.n_text, featurizer.n_dense
    weights, bias = np.zeros((x.shape[1], len(data.models))), np.zeros(len(data.models))
    for j, model in enumerate(data.models):
        if progress is not None:
            progress(model)
        weights[:, j], bias[j] = _fit_one(x, scores[:, j], c)
    costs = np.nan_to_num(np.nanmean(data.costs(), axis=0), nan=0.0) if data.has_costs() \
        else np.arange(len(data.models), dtype=float)
    info = {"C": c, "n_train": len(data), "shape_names": list(SHAPE_NAMES),
            "families": featurizer.n_families,
            "source": dataset.source, "cost_unit": "USD" if data.has_costs() else "rank"}
    end = n_text + n_dense
    return LearnedRouter(data.models, costs, featurizer, weights[:n_text],
                         weights[n_text:end], bias, lam, target, info,
                         weights[end:] if embedder is not None else None, embedder)
