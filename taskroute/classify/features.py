"""Text features for the learned task classifier, shared by training and inference.

The training script (`scripts/train_task_classifier.py`) and `LinearTaskClassifier` both
call `featurize`, so the features a model was trained on are exactly the features it sees
at run time. A model file records `FEATURIZER_VERSION`; change it whenever this module's
output changes, and retrain.

A text becomes a *set* of string features (binary presence, no counts):

    <token>            a word (a-z and Latin-1 letters; lowercased), "0" for a run of digits,
                       or any other single non-space character (punctuation, CJK, emoji)
    <tok> <tok>        adjacent token pair, joined by a space
    <prefix>~          first 4 letters of a word of 5+ letters ("summ~" from "summarise")
    f:<tok>            the first token, f2:<tok> <tok> the first two (the imperative verb)
    len:<n>            log2 bucket of the text's length in characters
    nl:<n>             bucket of the number of lines (pasted context, code, tables)
    code:fence         a ``` fence is present
    i:<tok>            a word of the instruction: the first line (its first `LINE_CHARS`)
    e:<tok>            a word of the last line, when there are several (a question after a
                       pasted passage); both let the few words that say what to do outweigh
                       the many of a passage, which otherwise reads as its own topic
    has:ctx            a passage follows the first line (a blank line, and 300+ characters)

Work is bounded: only the first `HEAD_CHARS` and last `TAIL_CHARS` characters are read,
so a 100 kB prompt costs about what a 2.5 kB one does. The length bucket still sees the
full length.

The kinds cannot collide: a token is letters only, "0" or one character, so it holds no
space, "~" after letters or ":" after letters. Building the set is kept to C-level loops
(`map`, `pairwise`, set updates): it is most of the classifier's run time.
"""

from __future__ import annotations

import re
from itertools import pairwise

from taskroute.bounded import head_and_tail

__all__ = ["FEATURIZER_VERSION", "HEAD_CHARS", "LINE_CHARS", "TAIL_CHARS", "feature_scale",
           "featurize"]

FEATURIZER_VERSION = 2
HEAD_CHARS = 2000
TAIL_CHARS = 500
LINE_CHARS = 300

_DIGITS = re.compile(r"\d+")
# Explicit ranges, not \w: Unicode class lookups made this regex twice as slow.
_TOKENS = re.compile(r"[a-zà-öø-ÿ]+|0|[^a-zà-öø-ÿ0\s]")
_WORDS = re.compile(r"[a-zà-öø-ÿ]+|\?")
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
    return head_and_tail(text, HEAD_CHARS, TAIL_CHARS)


def featurize(text: str) -> set[str]:
    """Return the set of features of `text` (see the module docstring)."""
    length = len(text)
    body = _bounded(text)
    tokens = _TOKENS.findall(_DIGITS.sub("0", body.lower()))
    features = set(tokens)
    features.update([t[:4] + "~" for t in features if len(t) > 4])
    features.update(map(" ".join, pairwise(tokens)))
    if tokens:
        features.add("f:" + tokens[0])
        if len(tokens) > 1:
            features.add("f2:" + tokens[0] + " " + tokens[1])
    features.add("len:" + str(min(length.bit_length(), _MAX_LEN_BUCKET)))
    features.add(_line_bucket(body.count("\n")))
    if "```" in body:
        features.add("code:fence")
    stripped = body.strip()
    first, sep, rest = stripped.partition("\n")
    features.update(["i:" + t for t in _WORDS.findall(first[:LINE_CHARS].lower())])
    if sep:
        last = rest.rstrip().rpartition("\n")[2]
        features.update(["e:" + t for t in _WORDS.findall(last[-LINE_CHARS:].lower())])
        if "\n\n" in stripped and length > 300:
            features.add("has:ctx")
    return features


def feature_scale(n_features: int) -> float:
    """The value each present feature takes: 1/sqrt(n), so every text has unit norm.

    `n_features` counts all of a text's features, known to the model or not, so pruning
    the model's vocabulary never changes the scale.
    """
    return float(n_features) ** -0.5 if n_features else 0.0
