"""The small condition language of policy rules.

    format is strict_schema and input_tokens > 2000
    user_tier >= pro and task in [reasoning, high_stakes]
    tools_required or (code_density > 0.3 and not task is chat)

A condition is names of signals (see `taskroute.signals`) plus `task`, compared with `is`,
`is not`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `in [..]`, `not in [..]`, joined by `and`, `or`,
`not` and parentheses. A bare name is true when the signal is truthy. `user_tier` compares by
the policy's order of user tiers. Conditions compile once, at load time, to plain closures.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from taskroute.exceptions import ConditionError

Facts = Any  # an object with the signals as attributes plus `task`
Predicate = Callable[[Facts], bool]

NUMERIC = frozenset({
    "input_tokens", "questions", "constraints", "code_density", "math_density", "complexity",
    "retrieval_score", "tools", "format_strictness", "session_escalations", "turns",
})
BOOLEAN = frozenset({"tools_required"})
FORMATS = ("text", "json_object", "json_schema", "strict_schema")

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>>=|<=|==|!=|>|<|\(|\)"
    r"|\[|\]|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "is": operator.eq, "==": operator.eq, "is not": operator.ne, "!=": operator.ne,
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    test: Predicate

    def __call__(self, facts: Facts) -> bool:
        return self.test(facts)


def compile_condition(
    text: str, *, tasks: Sequence[str], user_tiers: Sequence[str]
) -> Condition:
    tokens = _tokenize(text)
    parser = _Parser(tokens, tasks=tuple(tasks), user_tiers=tuple(user_tiers))
    test = parser.parse_or()
    if parser.pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[parser.pos]!r} in condition {text!r}")
    return Condition(text=text, test=test)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ConditionError(f"cannot read condition {text!r} from {text[pos:]!r}")
        tokens.append(match.group().strip())
        pos = match.end()
    if not tokens:
        raise ConditionError("empty condition")
    return tokens


class _Parser:
    def __init__(
        self, tokens: list[str], *, tasks: tuple[str, ...], user_tiers: tuple[str, ...]
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.tasks = tasks
        self.user_tiers = user_tiers

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ConditionError("condition ends too early")
        self.pos += 1
        return token

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == "or":
            self.take()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda facts: any(part(facts) for part in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.peek() == "and":
            self.take()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        return lambda facts: all(part(facts) for part in parts)

    def parse_not(self) -> Predicate:
        if self.peek() == "not":
            self.take()
            inner = self.parse_not()
            return lambda facts: not inner(facts)
        if self.peek() == "(":
            self.take()
            inner = self.parse_or()
            if self.take() != ")":
                raise ConditionError("missing ')'")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Predicate:
        name = self.take()
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ConditionError(f"expected a signal name, got {name!r}")
        self.check_name(name)
        op = self.peek()
        if op == "is" and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1] == "not":
            self.pos += 2
            op = "is not"
        elif op == "not" and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1] == "in":
            self.pos += 2
            op = "not in"
        elif op in _COMPARE or op == "in":
            self.take()
        else:
            return lambda facts: bool(getattr(facts, name))
        if op in ("in", "not in"):
            values = [self.value(name, v) for v in self.parse_list()]
            inside = frozenset(values)
            key = self.key(name)
            if op == "in":
                return lambda facts: key(facts) in inside
            return lambda facts: key(facts) not in inside
        value = self.value(name, self.take())
        compare = _COMPARE[op]
        if op in (">", ">=", "<", "<=") and name not in NUMERIC and name != "user_tier":
            raise ConditionError(f"'{name}' is not a number; compare it with 'is' or 'in'")
        key = self.key(name)

        def test(facts: Facts) -> bool:
            actual = key(facts)
            if actual is None:
                return False  # an absent signal (no retrieval score) matches no comparison
            return bool(compare(actual, value))

        return test

    def parse_list(self) -> list[str]:
        if self.take() != "[":
            raise ConditionError("'in' takes a list such as [reasoning, coding]")
        items: list[str] = []
        while True:
            token = self.take()
            if token == "]":
                return items
            if token == ",":
                continue
            items.append(token)

    def check_name(self, name: str) -> None:
        known = NUMERIC | BOOLEAN | {"task", "format", "user_tier"}
        if name not in known:
            raise ConditionError(
                f"unknown signal '{name}'; known: {', '.join(sorted(known))}"
            )

    def key(self, name: str) -> Callable[[Facts], Any]:
        if name == "user_tier":
            return operator.attrgetter("user_tier_rank")
        return operator.attrgetter(name)

    def value(self, name: str, token: str) -> Any:
        token = token.strip("'\"")
        if name in NUMERIC:
            try:
                return float(token)
            except ValueError:
                raise ConditionError(f"'{name}' compares with a number, not {token!r}") from None
        if name in BOOLEAN:
            if token not in ("true", "false"):
                raise ConditionError(f"'{name}' is true or false, not {token!r}")
            return token == "true"
        if name == "task":
            if token not in self.tasks:
                raise ConditionError(
                    f"unknown task class {token!r}; known: {', '.join(sorted(self.tasks))}"
                )
            return token
        if name == "format":
            if token not in FORMATS:
                raise ConditionError(f"format is one of {', '.join(FORMATS)}, not {token!r}")
            return token
        if name == "user_tier":
            if token not in self.user_tiers:
                listed = ", ".join(self.user_tiers) or "none declared under 'user tiers'"
                raise ConditionError(f"unknown user tier {token!r}; known: {listed}")
            return self.user_tiers.index(token)
        raise ConditionError(f"cannot compare '{name}'")  # pragma: no cover
