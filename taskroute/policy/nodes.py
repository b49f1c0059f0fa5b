"""Reading YAML nodes with their line numbers, so every policy error points at file:line:key."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

from taskroute.exceptions import PolicyError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TAG = "tag:yaml.org,2002:"


def normalize_key(key: str) -> str:
    """`api_key_env`, `api-key-env` and `api key env` are the same key."""
    return " ".join(key.replace("_", " ").replace("-", " ").lower().split())


def read_yaml(path: str | Path) -> Node:
    """A policy file's root node; PolicyError naming the file when it cannot be read."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file: {exc.strerror or exc}",
                          file=file) from None
    except UnicodeDecodeError:
        raise PolicyError("the policy file is not UTF-8 text", file=file) from None
    return parse_yaml(text, file)


# libyaml's parser when PyYAML was built with it: ~10x faster, so a reload's parse holds the
# GIL (and stalls the serving loop) for milliseconds, not tens of them. Same nodes and marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: str | None) -> Node:
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PolicyError(
            f"not valid YAML: {exc.problem}", file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}", file=file) from None
    if root is None:
        raise PolicyError("the policy file is empty", file=file)
    return Node(root, file, "")


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML node, the file it came from and its dotted path from the root."""

    node: yaml.Node
    file: str | None
    path: str
    key_line: int | None = None  # the line of the key this value sits under

    @property
    def line(self) -> int:
        """Where to point: the key's line for a value under a key, else the node's own."""
        if self.key_line is not None:
            return self.key_line
        return int(self.node.start_mark.line) + 1

    def fail(self, problem: str) -> NoReturn:
        raise PolicyError(problem, file=self.file, line=self.line, key=self.path or None)

    def child(self, node: yaml.Node, key: str, key_line: int | None = None) -> Node:
        path = f"{self.path}.{key}" if self.path else key
        return Node(node, self.file, path, key_line)

    # -- containers -----------------------------------------------------------------------

    def is_mapping(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    def is_sequence(self) -> bool:
        return isinstance(self.node, yaml.SequenceNode)

    def items(self) -> Iterator[tuple[str, Node]]:
        """A mapping's entries in file order; duplicate keys are an error."""
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"expected a mapping of keys to values, got {self.kind}")
        seen: set[str] = set()
        for key_node, value_node in self.node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                Node(key_node, self.file, self.path).fail("keys must be plain words")
            key = str(key_node.value)
            if key in seen:
                Node(key_node, self.file, self.path).fail(f"'{key}' is given twice")
            seen.add(key)
            yield key, self.child(value_node, key, int(key_node.start_mark.line) + 1)

    def fields(self, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Node]:
        """A mapping whose keys (normalized) must be among `allowed`."""
        found: dict[str, Node] = {}
        for key, value in self.items():
            name = normalize_key(key)
            if name not in allowed:
                value.fail(f"unknown key '{key}'; expected one of: {', '.join(allowed)}")
            found[name] = value
        for name in required:
            if name not in found:
                self.fail(f"missing '{name}'")
        return found

    def sequence(self) -> list[Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail(f"expected a list, got {self.kind}")
        return [self.child(item, f"[{i}]") for i, item in enumerate(self.node.value)]

    # -- scalars --------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        tag = str(self.node.tag).removeprefix(_TAG)
        return {"str": "text", "int": "a number", "float": "a number", "bool": "true/false",
                "null": "nothing"}.get(tag, tag)

    def _scalar(self, expected: str) -> tuple[str, str]:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail(f"expected {expected}, got {self.kind}")
        return str(self.node.tag).removeprefix(_TAG), str(self.node.value)

    def text(self) -> str:
        tag, value = self._scalar("text")
        if tag in ("null", "map", "seq") or not value.strip():
            self.fail("expected text, got nothing")
        return value

    def number(self, *, low: float | None = None, high: float | None = None) -> float:
        tag, value = self._scalar("a number")
        if tag not in ("int", "float"):
            self.fail(f"expected a number, got {value!r}")
        number = float(value.replace("_", ""))
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"from {low:g}" if low is not None else ""
            if high is not None:
                bounds += f" to {high:g}" if bounds else f"at most {high:g}"
            self.fail(f"expected a number {bounds}, got {value}")
        return number

    def integer(self, *, low: int = 0) -> int:
        tag, value = self._scalar("a whole number")
        if tag != "int" or int(value.replace("_", "")) < low:
            self.fail(f"expected a whole number of at least {low}, got {value!r}")
        return int(value.replace("_", ""))

    def boolean(self) -> bool:
        tag, value = self._scalar("true or false")
        if tag != "bool":
            self.fail(f"expected true or false, got {value!r}")
        return value.lower() in ("true", "yes", "on", "y")

    def seconds(self) -> float:
        """A duration: a number of seconds or '250ms', '5s', '15m', '1h', '30d'."""
        _, value = self._scalar("a duration such as 5s or 250ms")
        match = _DURATION.match(value)
        if not match:
            self.fail(f"expected a duration such as 5s, 250ms or 15m, got {value!r}")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]

    def text_list(self) -> tuple[str, ...]:
        """A list of texts; a single text counts as a list of one."""
        if isinstance(self.node, yaml.ScalarNode):
            return (self.text(),)
        return tuple(item.text() for item in self.sequence())

    def one_of(self, choices: Sequence[str]) -> str:
        value = self.text()
        if value not in choices:
            self.fail(f"expected one of {', '.join(choices)}, got {value!r}")
        return value
