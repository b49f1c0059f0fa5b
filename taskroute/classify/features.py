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
    i2:<tok> <tok>     adjacent words of the instruction ("given this", "comma separated")
    ilen:<n>           the instruction's length in words, in buckets of four
    q:list             the instruction asks for several items (list, extract, table, JSON…)
    q:summ             it asks for the gist (summarise, overview, key points, TL;DR…)
    q:question         it is a question (a question word first, or a question mark)
    q:ctx              a passage of 150+ characters follows it
    q:def              with a passage: a short "what is X?" / "who was X?" question
    q:subj<0|1|2>      with a passage: none, half or all of the instruction's content words
                       appear in the passage's opening (a question about its subject as a
                       whole, or about a detail)

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

FEATURIZER_VERSION = 3
HEAD_CHARS = 2000
TAIL_CHARS = 500
LINE_CHARS = 300

_DIGITS = re.compile(r"\d+")
# Explicit ranges, not \w: Unicode class lookups made this regex twice as slow.
_TOKENS = re.compile(r"[a-zà-öø-ÿ]+|0|[^a-zà-öø-ÿ0\s]")
_WORDS = re.compile(r"[a-zà-öø-ÿ]+|\?")
_MAX_LEN_BUCKET = 16
_INSTRUCTION = re.compile(r"[a-zà-öø-ÿ]+|\?|;")
_ASKS_LIST = re.compile(r"\b(?:list|lists|extract|comma|commas|bullet|bulleted|bullets|table|"
                        r"csv|json|all the|find all|names of|separated|enumerate|identify all)\b")
_ASKS_GIST = re.compile(r"\b(?:summar\w*|overview|gist|tl;?dr|key points|main points|main idea|"
                        r"briefly|in a few sentences|in your own words|sum up|condense|"
                        r"short description|brief)\b")
_DEFINITION = re.compile(r"^(?:what|who)(?:'s| is| are| was| were)(?: an?| the)? [^?,]{1,60}\??$")
_QUESTION_WORDS = frozenset(("what", "who", "when", "where", "which", "why", "how", "is", "are",
                             "was", "were", "did", "does", "do", "can"))
# Words that say how to ask, not what about: left out when matching the passage's subject.
_FRAME_WORDS = frozenset(("what", "who", "is", "are", "was", "were", "the", "of", "in", "to",
                          "and", "did", "does", "do", "how", "when", "where", "which", "why",
                          "tell", "me", "about", "this", "that", "from", "text", "passage",
                          "paragraph", "given", "based", "on", "reference", "according", "for",
                          "with"))
_CONTEXT_CHARS = 150
_OPENING_CHARS = 200


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
    instruction = first[:LINE_CHARS].lower()
    features.update(["i:" + t for t in _WORDS.findall(instruction)])
    if sep:
        last = rest.rstrip().rpartition("\n")[2]
        features.update(["e:" + t for t in _WORDS.findall(last[-LINE_CHARS:].lower())])
        if "\n\n" in stripped and length > 300:
            features.add("has:ctx")
    _instruction_features(instruction.strip(), rest.strip() if sep else "", features)
    return features


def _instruction_features(instruction: str, passage: str, features: set[str]) -> None:
    """What the first line asks for: several items, the gist, one fact; and, over a
    passage, whether it asks about the passage's subject as a whole."""
    words = _INSTRUCTION.findall(instruction)
    features.update(map("i2:".__add__, map(" ".join, pairwise(words))))
    n_words = len(words) - words.count("?")
    features.add("ilen:" + str(min(n_words // 4, 6)))
    if _ASKS_LIST.search(instruction):
        features.add("q:list")
    if _ASKS_GIST.search(instruction):
        features.add("q:summ")
    if instruction.endswith("?") or (words and words[0] in _QUESTION_WORDS):
        features.add("q:question")
    if len(passage) <= _CONTEXT_CHARS:
        return
    features.add("q:ctx")
    if n_words <= 8 and _DEFINITION.match(instruction):
        features.add("q:def")
    content = [w for w in words if len(w) > 2 and w not in _FRAME_WORDS]
    if content:
        opening = passage[:_OPENING_CHARS].lower()
        share = sum(w in opening for w in content) / len(content)
        features.add("q:subj" + ("2" if share >= 0.99 else "1" if share >= 0.5 else "0"))


def feature_scale(n_features: int) -> float:
    """The value each present feature takes: 1/sqrt(n), so every text has unit norm.

    `n_features` counts all of a text's features, known to the model or not, so pruning
    the model's vocabulary never changes the scale.
    """
    return float(n_features) ** -0.5 if n_features else 0.0
