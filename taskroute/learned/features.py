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

Work per prompt is bounded: the tokens and every character-scanning shape number read only the
prompt's first HEAD_CHARS and last TAIL_CHARS characters (lengths still count all of it), so
the learned router fits in `decide`'s budget (p99 < 1 ms with the classifier, bench/decision.py)
however long the prompt. Fewer than 6 % of the shared sets' prompts are longer than the window.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from taskroute.bounded import head_and_tail

FloatArray = npt.NDArray[np.float64]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_OPTION = re.compile(r"^([A-J])[.)] (.*)$", re.M)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MATH = re.compile(r"[=+\-*/^<>√∫∑]")
_NEGATION = re.compile(r"\b(NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_CODE = re.compile(r"\bdef |\breturn\b|[{};]\s*$|```", re.M)
_CODE_MARKS = ("def ", "return", "{", "}", ";", "```")  # every match holds one of these
_NEGATION_WORDS = ("NOT", "EXCEPT", "LEAST", "FALSE", "INCORRECT")

HEAD_CHARS = 1000
TAIL_CHARS = 500
_NO_DIGITS = str.maketrans("", "", "0123456789")
FAMILY_SHAPE_WEIGHT = 0.3  # shape's weight next to the unit-length text projection
FAMILY_INTERACTION = 0.5  # scale of the family × shape block

SHAPE_NAMES: tuple[str, ...] = (
    "log_chars", "log_words", "lines", "digit_share", "math_symbols", "numbers",
    "negation_caps", "negation_word", "n_options", "option_len_mean", "option_len_std",
    "numeric_options", "all_none_of_above", "statement_pairs", "question_mark", "code",
)


def _has(text: str, pattern: re.Pattern[str], needles: tuple[str, ...]) -> bool:
    """`pattern.search(text)`, skipped when none of the substrings it needs is there (most
    prompts): the same answer at a fraction of the cost."""
    return any(n in text for n in needles) and pattern.search(text) is not None


def window(text: str) -> str:
    """What the costly features read: the first HEAD_CHARS and last TAIL_CHARS characters (for
    a multiple-choice prompt the tail holds the question and its options)."""
    return head_and_tail(text, HEAD_CHARS, TAIL_CHARS)


def tokens(text: str) -> list[str]:
    """Unigrams and bigrams of the lower-cased word tokens of the prompt's window."""
    words = _TOKEN.findall(window(text).lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def shape_features(text: str) -> list[float]:
    """Handcrafted numbers describing the prompt's form (see SHAPE_NAMES). Lengths count the
    whole prompt; everything that scans characters reads its window."""
    seen = window(text)
    options = _OPTION.findall(seen)
    cut = text.find("\nA. ") if options else -1
    stem = text[:cut] if cut >= 0 else text
    part = window(stem)
    lengths = [len(o[1]) for o in options] or [0]
    mean = sum(lengths) / len(lengths)
    spread = math.sqrt(sum((x - mean) ** 2 for x in lengths) / len(lengths))
    numeric = sum(1 for o in options if _NUMBER.search(o[1]) and len(o[1]) <= 16)
    lower = seen.lower()
    n = max(len(part), 1)
    return [
        math.log1p(len(stem)),
        math.log1p(stem.count(" ") + 1),  # about the words, without splitting them all
        math.log1p(stem.count("\n")),
        (len(part) - len(part.translate(_NO_DIGITS))) / n,
        math.log1p(len(_MATH.findall(part))),
        math.log1p(len(_NUMBER.findall(part))),
        float(_has(part, _NEGATION, _NEGATION_WORDS)),
        float(" not " in part.lower()),
        float(len(options)),
        math.log1p(mean),
        math.log1p(spread),
        numeric / max(len(options), 1),
        float("of the above" in lower),
        float("statement 1" in lower or "scenario 1" in lower),
        float("?" in part),
        float(_has(seen, _CODE, _CODE_MARKS)),
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
    family_axes: npt.NDArray[np.floating[Any]] = field(  # (terms, d); float32 once loaded
        default_factory=lambda: np.zeros((0, 0)))
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
        vocab = self.vocabulary
        counts: dict[int, int] = {}
        for tok, n in Counter(tokens(text)).items():  # counted in C, each term looked up once
            j = vocab.get(tok)
            if j is not None:
                counts[j] = n
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[idx]
        return idx, values / np.linalg.norm(values)

    def scaled_shape(self, text: str) -> FloatArray:
        """The shape numbers standardised with the training mean and scale."""
        return (np.asarray(shape_features(text)) - self.shape_mean) / self.shape_scale

    def dense_part(self, text: str, group: str | None) -> FloatArray:
        """Group one-hot, standardised shape and (if any) the family blocks (training's rows)."""
        onehot = np.zeros(len(self.groups))
        if group is not None and group in self.groups:
            onehot[self.groups.index(group)] = 1.0
        shape = self.scaled_shape(text)
        if not self.n_families:
            return np.concatenate([onehot, shape])
        family = np.zeros(self.n_families)
        family[self.family_of(*self.text_part(text), shape)] = 1.0
        return np.concatenate([onehot, shape, family,
                               FAMILY_INTERACTION * np.outer(family, shape).ravel()])

    def dense_logits(self, text: str, group: str | None,
                     text_part: tuple[npt.NDArray[np.int64], FloatArray],
                     weights: FloatArray) -> FloatArray:
        """`dense_part(text, group) @ weights` without building the mostly-zero vector: the
        group's and the family's rows picked, the shape blocks multiplied (inference path)."""
        g, s = len(self.groups), len(SHAPE_NAMES)
        shape = self.scaled_shape(text)
        out = shape @ weights[g:g + s]
        if group is not None and group in self.groups:
            out = out + weights[self.groups.index(group)]
        if self.n_families:
            family = self.family_of(*text_part, shape)
            start = g + s + self.n_families + family * s
            out = out + weights[g + s + family] + FAMILY_INTERACTION * (
                shape @ weights[start:start + s])
        return np.asarray(out, dtype=float)

    def family_of(self, idx: npt.NDArray[np.int64], values: FloatArray,
                  shape: FloatArray) -> int:
        """Index of the nearest family centroid (k-means assignment)."""
        pos = np.minimum(np.searchsorted(self.family_terms, idx), len(self.family_terms) - 1)
        hit = self.family_terms[pos] == idx
        z = values[hit] @ self.family_axes[pos[hit]]
        z = z / (np.linalg.norm(z) + 1e-9)
        point = np.concatenate([z, FAMILY_SHAPE_WEIGHT * shape])
        return int(np.argmin(((self.family_centroids - point) ** 2).sum(axis=1)))
