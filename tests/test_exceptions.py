"""Every error taskroute raises lives in `taskroute/exceptions.py`, drawn in its docstring."""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path
from types import ModuleType

import taskroute
from taskroute import exceptions

PACKAGE = Path(taskroute.__file__).parent

# Exception classes allowed outside exceptions.py: private control flow that never reaches a
# caller of taskroute. Each entry says why.
ALLOWED = {
    # The stand-in upstream's own 400 (it plays a foreign provider): server.py answers it on
    # the wire, and taskroute sees that answer as an UpstreamStatus like any provider's.
    "taskroute.providers.simulated.wire_openai.BadRequest",
    # A model's tool arguments that a tool's schema refuses: `run_tool_call` turns it into a
    # tool result the model reads, so it never reaches the application as an error.
    "taskroute.tools.registry.BadArguments",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_exception(base: ast.expr, module: ModuleType | None) -> bool:
    """Whether a base-class expression names an exception class: looked up in the module
    (then builtins) when it can be, else judged by its name."""
    dotted = ast.unparse(base)
    names = dotted.split(".")
    value: object = vars(module) if module is not None else {}
    for i, name in enumerate(names):
        found = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
        if found is None and i == 0:
            found = getattr(builtins, name, None)
        if found is None:
            return names[-1].endswith(("Error", "Exception"))
        value = found
    return isinstance(value, type) and issubclass(value, BaseException)


def _exception_classes_outside_the_tree() -> set[str]:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name == "taskroute.exceptions":
            continue
        # __main__ runs the CLI when imported; its base names are judged by name alone
        module = None if path.name == "__main__.py" else importlib.import_module(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(_is_exception(b, module)
                                                      for b in node.bases):
                found.add(f"{name}.{node.name}")
    return found


def test_every_exception_class_is_defined_in_exceptions_py() -> None:
    outside = _exception_classes_outside_the_tree()
    assert outside - ALLOWED == set(), "define these in taskroute/exceptions.py (or allow-list " \
        "a private one in tests/test_exceptions.py, saying why)"
    assert not ALLOWED - outside, "stale allow-list entries"


def _drawn_tree() -> list[tuple[int, str, str]]:
    """(depth, class name, rest of the line) for each class the docstring draws."""
    assert exceptions.__doc__
    drawn = []
    for line in exceptions.__doc__.splitlines():
        match = re.match(r"^ {4}(?P<prefix>[ │├└─]*)(?P<name>[A-Z]\w+)\b(?P<rest>.*)$", line)
        if match:
            drawn.append((len(match["prefix"]) // 4, match["name"], match["rest"]))
    return drawn


def test_the_docstring_draws_every_error_under_its_own_base() -> None:
    errors = {name: cls for name, cls in vars(exceptions).items()
              if isinstance(cls, type) and issubclass(cls, exceptions.TaskrouteError)}
    drawn = _drawn_tree()
    assert sorted(name for _, name, _ in drawn) == sorted(errors)
    parents: list[str] = []
    for depth, name, _ in drawn:
        parents[depth:] = [name]
        if depth:
            # the drawn parent is the first base (a second one, if any, is named in the line)
            assert errors[name].__bases__[0] is errors[parents[depth - 1]], name


def test_a_status_drawn_in_the_tree_is_the_class_status() -> None:
    for _, name, rest in _drawn_tree():
        status = re.search(r"\((?:HTTP )?(\d{3})\)", rest)
        if status:
            assert getattr(exceptions, name).status_code == int(status[1]), name
