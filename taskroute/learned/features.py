"""Prompt features for the learned router, identical at training and at inference.

Four blocks, concatenated:
  * text: word unigrams and bigrams (lower-cased `\\w\\w+` tokens), sublinear TF × IDF,
    L2-normalised — the same numbers scikit-learn's TfidfVectorizer gives with these settings;
  * group: a one-hot of the prompt's task class or subject, when known;
  * shape: a few handcrafted numbers (length, digits, maths symbols, negations such as
    NOT/EXCEPT, multiple-choice option structure), standardised with the training mean/scale;
  * family (when trained with families): the prompt's nearest k-means centroid in a small space
    (the text projected on the TF-IDF's leading SVD axes — kept only for the terms that weigh
    most on them, so the file stays small — unit length, next to the scaled shape), as a
    one-hot, plus that one-hot times the shape numbers — so each prompt family (source format)
    gets its own shape weights. Projection and centroids are plain arrays.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_OPTION = re.compile(r"^([A-J])[.)] (.*)$", re.M)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MATH = re.compile(r"[=+\-*/^<>√∫∑]")
_NEGATION = re.compile(r"\b(NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_CODE = re.compile(r"\bdef |\breturn\b|[{};]\s*$|```", re.M)

FAMILY_SHAPE_WEIGHT = 0.3  # shape's weight next to the unit-length text projection
FAMILY_INTERACTION = 0.5  # scale of the family × shape block

SHAPE_NAMES: tuple[str, ...] = (
    "log_chars", "log_words", "lines", "digit_share", "math_symbols", "numbers",
    "negation_caps", "negation_word", "n_options", "option_len_mean", "option_len_std",
    "numeric_options", "all_none_of_above", "statement_pairs", "question_mark", "code",
)


def tokens(text: str) -> list[str]:
    """Unigrams and bigrams of the lower-cased word tokens."""
    words = _TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def shape_features(text: str) -> list[float]:
    """Handcrafted numbers describing the prompt's form (see SHAPE_NAMES)."""
    options = _OPTION.findall(text)
    stem = text[: text.find("\nA. ")] if options and "\nA. " in text else text
    lengths = [len(o[1]) for o in options] or [0]
    numeric = sum(1 for o in options if _NUMBER.search(o[1]) and len(o[1]) <= 16)
    lower = text.lower()
    n = max(len(stem), 1)
    return [
        math.log1p(len(stem)),
        math.log1p(len(stem.split())),
        math.log1p(stem.count("\n")),
        sum(c.isdigit() for c in stem) / n,
        math.log1p(len(_MATH.findall(stem))),
        math.log1p(len(_NUMBER.findall(stem))),
        float(bool(_NEGATION.search(stem))),
        float(" not " in stem.lower()),
        float(len(options)),
        math.log1p(float(np.mean(lengths))),
        math.log1p(float(np.std(lengths))),
        numeric / max(len(options), 1),
        float("of the above" in lower),
        float("statement 1" in lower or "scenario 1" in lower),
        float("?" in stem),
        float(bool(_CODE.search(text))),
    ]


@dataclass(frozen=True)
class Featurizer:
    """Maps (text, group) to a sparse text part and a dense part; plain arrays only."""

    vocabulary: Mapping[str, int]
    idf: FloatArray
    groups: tuple[str, ...]
    shape_mean: FloatArray
    shape_scale: FloatArray
    # the text terms the family projection reads (sorted vocabulary indices) and their axes
    family_terms: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))
    family_axes: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))  # (terms, d)
    family_centroids: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))  # (k, d+s)

    @property
    def n_text(self) -> int:
        return len(self.idf)

    @property
    def n_families(self) -> int:
        return len(self.family_centroids)

    @property
    def n_dense(self) -> int:
        return len(self.groups) + len(SHAPE_NAMES) * (1 + self.n_families) + self.n_families

    def text_part(self, text: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        counts: dict[int, int] = {}
        vocab = self.vocabulary
        for tok in tokens(text):
            j = vocab.get(tok)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[idx]
        return idx, values / np.linalg.norm(values)

    def dense_part(self, text: str, group: str | None,
                   text_part: tuple[npt.NDArray[np.int64], FloatArray] | None = None,
                   ) -> FloatArray:
        """Group one-hot, standardised shape and (if any) the family blocks; `text_part`
        saves recomputing the text block when the caller already has it."""
        onehot = np.zeros(len(self.groups))
        if group is not None and group in self.groups:
            onehot[self.groups.index(group)] = 1.0
        shape = (np.asarray(shape_features(text)) - self.shape_mean) / self.shape_scale
        if not self.n_families:
            return np.concatenate([onehot, shape])
        idx, values = text_part if text_part is not None else self.text_part(text)
        family = np.zeros(self.n_families)
        family[self.family_of(idx, values, shape)] = 1.0
        return np.concatenate([onehot, shape, family,
                               FAMILY_INTERACTION * np.outer(family, shape).ravel()])

    def family_of(self, idx: npt.NDArray[np.int64], values: FloatArray,
                  shape: FloatArray) -> int:
        """Index of the nearest family centroid (k-means assignment)."""
        pos = np.minimum(np.searchsorted(self.family_terms, idx), len(self.family_terms) - 1)
        hit = self.family_terms[pos] == idx
        z = values[hit] @ self.family_axes[pos[hit]]
        z = z / (np.linalg.norm(z) + 1e-9)
        point = np.concatenate([z, FAMILY_SHAPE_WEIGHT * shape])
        return int(np.argmin(((self.family_centroids - point) ** 2).sum(axis=1)))
