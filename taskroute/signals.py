"""Confidence signals: cheap numbers computed from a request, each with a documented meaning.

Each signal is one small function of the request, so rules in the policy can name it and a
decision can report it. None of them calls a model or does I/O.

| signal               | meaning                                                                  |
|----------------------|--------------------------------------------------------------------------|
| input_tokens         | estimated tokens across all messages (about four characters a token)     |
| questions            | questions asked in the last user message (question marks, at least 0)    |
| constraints          | explicit constraints there: must/exactly/at least/do not..., list items  |
| code_density         | 0–1, share of its lines that look like code                              |
| math_density         | 0–1, how much of it is numbers, operators, equations or LaTeX            |
| complexity           | 0–1, one number combining the five above (see `complexity`)              |
| retrieval_score      | 0–1, the caller's retrieval confidence (`metadata.retrieval_score`) |
| tools                | how many tools the request offers                                        |
| tools_required       | tools are offered and `tool_choice` is not "none"                        |
| format               | text, json_object, json_schema or strict_schema                          |
| format_strictness    | 0 text, 1 json_object, 2 json_schema, 3 strict json_schema               |
| user_tier            | `metadata.user_tier`, a name from the policy's user tiers, or None       |
| user_tier_rank       | its place in the policy's list (0 = lowest), or -1 when absent/unknown   |
| session_escalations  | escalations recorded for `metadata.session_id` within the policy's window |
| turns                | user messages in the conversation                                        |
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from taskroute.bounded import head_and_tail
from taskroute.exceptions import InvalidRequest
from taskroute.request import ChatRequest

FORMAT_STRICTNESS = {"text": 0, "json_object": 1, "json_schema": 2, "strict_schema": 3}

# Density features look at a bounded window of the text, so a huge prompt costs no more than this.
_HEAD_CHARS = 1500
_TAIL_CHARS = 500

_QUESTION = re.compile(r"\?")
# Word lookups and str.count beat one big case-insensitive regex by ~10x on long prompts.
_CONSTRAINT_WORDS = frozenset({
    "must", "should", "shall", "exactly", "only", "never", "always", "without", "ensure",
    "require", "required", "within", "don't",
})
_CONSTRAINT_PHRASES = (
    "at least", "at most", "no more than", "no less than", "do not", "limit to", "limited to",
)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*•]|\d+[.)])[ \t]+", re.MULTILINE)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import|return\b|if .*:|for .*:|while .*:|function\b"
    r"|const |let |var |public |private |#include|SELECT\b|INSERT\b|```|[}\]);]\s*$|\S.*[;{]\s*$"
    r"|\S+\s*=\s*\S.*[)\]\"']\s*$|//|/\*|<\w+[^>]*>)",
    re.IGNORECASE,
)
_MATH_EXPRESSION = re.compile(r"\d\s?[-+*/^=<>]\s?\(?\d|\\(?:frac|sum|int|sqrt|cdot|times|leq|geq)")
_MATH_WORDS = frozenset({
    "equation", "integral", "derivative", "probability", "prove", "theorem", "modulo", "solve",
})
_MATH_SYMBOLS = "∑∫√≤≥±×÷π"


@dataclass(frozen=True, slots=True)
class Signals:
    input_tokens: int
    questions: int
    constraints: int
    code_density: float
    math_density: float
    complexity: float
    retrieval_score: float | None
    tools: int
    tools_required: bool
    format: str
    format_strictness: int
    user_tier: str | None
    user_tier_rank: int
    session_escalations: int
    turns: int

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar: a flat copy is what asdict's recursion returns, ~10x faster
        # (it runs once per logged request, on the loop)
        return {name: getattr(self, name) for name in self.__slots__}


def input_tokens(request: ChatRequest) -> int:
    """The request's input tokens, estimated: every message's text and the tools."""
    tokens = sum(estimate_tokens(m.text) for m in request.messages)
    if request.tools:
        tokens += estimate_tokens(str(request.tools))
    return tokens


def estimate_tokens(text: str) -> int:
    """About four characters a token: close enough for routing and cost estimates."""
    return (len(text) + 3) // 4


def _window(text: str) -> str:
    return head_and_tail(text, _HEAD_CHARS, _TAIL_CHARS)


_PUNCTUATION = str.maketrans(dict.fromkeys('.,;:!?()[]{}"`', " "))


@functools.lru_cache(maxsize=4)  # constraints and maths both read the same window's words
def _words(window: str) -> tuple[str, ...]:
    """Lower-cased words with punctuation dropped."""
    return tuple(window.lower().translate(_PUNCTUATION).split())


def count_questions(text: str) -> int:
    return len(_QUESTION.findall(_window(text)))


def count_constraints(text: str) -> int:
    """Constraint words and phrases (must, exactly, at most, do not, ...) and list items."""
    window = _window(text)
    lowered = window.lower()
    words = sum(map(_CONSTRAINT_WORDS.__contains__, _words(window)))
    phrases = sum(lowered.count(phrase) for phrase in _CONSTRAINT_PHRASES)
    return words + phrases + len(_LIST_ITEM.findall(window))


def code_density(text: str) -> float:
    lines = [line for line in _window(text).splitlines() if line.strip()]
    if not lines:
        return 0.0
    return sum(1 for line in lines if _CODE_LINE.match(line)) / len(lines)


def math_density(text: str) -> float:
    window = _window(text)
    words = _words(window)
    markers = (
        len(_MATH_EXPRESSION.findall(window))
        + sum(map(_MATH_WORDS.__contains__, words))
        + sum(window.count(symbol) for symbol in _MATH_SYMBOLS)
    )
    # One math marker in twenty words already reads as a math problem.
    return min(1.0, 20.0 * markers / max(1, len(words)))


def complexity(
    input_tokens: int, questions: int, constraints: int, code: float, maths: float
) -> float:
    """0–1: length on a log scale (10 tokens → 0, 10,000 → 1) weighs 35 %, questions 15 %
    (saturating at 4), constraints 20 % (at 6), code 15 %, math 15 %."""
    length = min(1.0, max(0.0, (math.log10(max(input_tokens, 1)) - 1.0) / 3.0))
    score = (
        0.35 * length
        + 0.15 * min(1.0, questions / 4)
        + 0.20 * min(1.0, constraints / 6)
        + 0.15 * code
        + 0.15 * maths
    )
    return round(score, 4)


def retrieval_score(request: ChatRequest) -> float | None:
    raw = request.meta("retrieval_score")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(
            f"metadata.retrieval_score must be a number from 0 to 1; got {raw!r}",
            param="metadata.retrieval_score",
        )
    return value


def tools_required(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def measure(
    request: ChatRequest,
    *,
    user_tiers: tuple[str, ...] = (),
    session_escalations: int = 0,
) -> Signals:
    """Every signal for one request."""
    text = request.last_user_text
    tokens = input_tokens(request)
    questions = count_questions(text)
    constraints = count_constraints(text)
    code = round(code_density(text), 4)
    maths = round(math_density(text), 4)
    fmt = request.format_kind
    tier = request.meta("user_tier")
    return Signals(
        input_tokens=tokens,
        questions=questions,
        constraints=constraints,
        code_density=code,
        math_density=maths,
        complexity=complexity(tokens, questions, constraints, code, maths),
        retrieval_score=retrieval_score(request),
        tools=len(request.tools or ()),
        tools_required=tools_required(request),
        format=fmt,
        format_strictness=FORMAT_STRICTNESS.get(fmt, 0),
        user_tier=tier,
        user_tier_rank=user_tiers.index(tier) if tier in user_tiers else -1,
        session_escalations=session_escalations,
        turns=sum(1 for m in request.messages if m.role == "user"),
    )
