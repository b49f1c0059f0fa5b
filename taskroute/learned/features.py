"""Prompt features for the learned router, identical at training and at inference.

Three blocks, concatenated:
  * text: word unigrams and bigrams (lower-cased `\\w\\w+` tokens), sublinear TF × IDF,
    L2-normalised — the same numbers scikit-learn's TfidfVectorizer gives with these settings;
  * group: a one-hot of the prompt's task class or subject, when known;
  * shape: a few handcrafted numbers (length, digits, maths symbols, negations such as
    NOT/EXCEPT, multiple-choice option structure), standardised with the training mean/scale.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_OPTION = re.compile(r"^([A-J])[.)] (.*)$", re.M)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MATH = re.compile(r"[=+\-*/^<>√∫∑]")
_NEGATION = re.compile(r"\b(NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_CODE = re.compile(r"\bdef |\breturn\b|[{};]\s*$|```", re.M)

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

    @property
    def n_text(self) -> int:
        return len(self.idf)

    @property
    def n_dense(self) -> int:
        return len(self.groups) + len(SHAPE_NAMES)

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

    def dense_part(self, text: str, group: str | None) -> FloatArray:
        onehot = np.zeros(len(self.groups))
        if group is not None and group in self.groups:
            onehot[self.groups.index(group)] = 1.0
        shape = (np.asarray(shape_features(text)) - self.shape_mean) / self.shape_scale
        return np.concatenate([onehot, shape])
