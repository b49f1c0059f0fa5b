"""Text features for the learned task classifier, shared by training and inference.

The training script (`scripts/train_task_classifier.py`) and `LinearTaskClassifier` both
call `featurize`, so the features a model was trained on are exactly the features it sees
at run time. A model file records `FEATURIZER_VERSION`; change it whenever this module's
output changes, and retrain.

A text becomes a *set* of string features (binary presence, no counts):

    w:<token>          word or punctuation token (lowercased, digit runs folded to "0")
    b:<tok> <tok>      adjacent token pair
    p:<prefix>         first 4 letters of a word of 5+ letters ("summ" from "summarise")
    f:<tok>            the first token, f2:<tok> <tok> the first two (the imperative verb)
    len:<n>            log2 bucket of the text's length in characters
    nl:<n>             bucket of the number of lines (pasted context, code, tables)
    code:fence         a ``` fence is present

Work is bounded: only the first `HEAD_CHARS` and last `TAIL_CHARS` characters are read,
so a 100 kB prompt costs about what a 2.5 kB one does. The length bucket still sees the
full length.
"""

from __future__ import annotations

import re

__all__ = ["FEATURIZER_VERSION", "HEAD_CHARS", "TAIL_CHARS", "featurize", "feature_scale"]

FEATURIZER_VERSION = 1
HEAD_CHARS = 2000
TAIL_CHARS = 500

_DIGITS = re.compile(r"\d+")
_TOKENS = re.compile(r"[^\W\d_]+|0|[^\w\s]")
_MAX_LEN_BUCKET = 16


def _line_bucket(newlines: int) -> str:
    if newlines == 0:
        return "nl:0"
    if newlines < 3:
        return "nl:1"
    if newlines < 10:
        return "nl:2"
    if newlines < 30:
        return "nl:3"
    return "nl:4"


def _bounded(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def featurize(text: str) -> set[str]:
    """Return the set of features of `text` (see the module docstring)."""
    length = len(text)
    body = _bounded(text)
    tokens = _TOKENS.findall(_DIGITS.sub("0", body.lower()))
    features = {"w:" + t for t in tokens}
    features.update(["b:" + a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)])
    features.update(["p:" + t[:4] for t in set(tokens) if len(t) > 4])
    if tokens:
        features.add("f:" + tokens[0])
        if len(tokens) > 1:
            features.add("f2:" + tokens[0] + " " + tokens[1])
    features.add("len:" + str(min(length.bit_length(), _MAX_LEN_BUCKET)))
    features.add(_line_bucket(body.count("\n")))
    if "```" in body:
        features.add("code:fence")
    return features


def feature_scale(n_features: int) -> float:
    """The value each present feature takes: 1/sqrt(n), so every text has unit norm.

    `n_features` counts all of a text's features, known to the model or not, so pruning
    the model's vocabulary never changes the scale.
    """
    return float(n_features) ** -0.5 if n_features else 0.0
