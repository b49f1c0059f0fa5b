"""One door to the log: only `taskroute/store/` imports a database driver, and the pure
route-quality code never imports the store (so a new backend is one new module under `store/`).

Relaxed on purpose for the state replicas share (rate limits, budget holds, sessions, breakers),
which is not the log: `taskroute/shared/` may import `redis` (replicas anywhere) and `sqlite3`
(one machine's workers, `serve --workers`) — and no other driver; a log store in either would
still belong under `store/`."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "taskroute"
DRIVERS = {"sqlite3", "_sqlite3", "aiosqlite", "asyncpg", "psycopg", "psycopg2", "redis"}


@functools.cache
def modules() -> tuple[tuple[str, ast.Module], ...]:
    """Every module of the package, as (taskroute/…/name.py, its syntax tree)."""
    return tuple((path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text("utf-8")))
                 for path in sorted(PACKAGE.rglob("*.py")))


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (never imported at run time)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def imported(tree: ast.Module, *, runtime_only: bool = False) -> Iterator[str]:
    """Every module name the code imports, at any depth (in functions too), including names
    given to `importlib.import_module` as string literals."""
    skip = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.args[0].value


SHARED_STATE = ("taskroute/shared/", {"redis", "sqlite3"})   # the one other door, two drivers


def drivers_outside_store() -> list[str]:
    return [f"{name} imports {module}" for name, tree in modules()
            if not name.startswith("taskroute/store/")
            for module in imported(tree) if module.split(".")[0] in DRIVERS
            and not (name.startswith(SHARED_STATE[0]) and module.split(".")[0] in SHARED_STATE[1])]


def test_only_the_store_imports_a_database_driver() -> None:
    assert drivers_outside_store() == []


def test_the_check_sees_the_store_s_own_driver_imports() -> None:
    found = {name for name, tree in modules()
             if any(m.split(".")[0] in DRIVERS for m in imported(tree))}
    assert "taskroute/store/sqlite.py" in found


def test_the_shared_state_package_may_import_redis_and_sqlite_and_nothing_else() -> None:
    found = {name for name, tree in modules() if name.startswith(SHARED_STATE[0])
             and any(m.split(".")[0] == "redis" for m in imported(tree))}
    assert "taskroute/shared/redis_conn.py" in found  # the check does see it
    others = [f"{name} imports {module}" for name, tree in modules()
              if name.startswith(SHARED_STATE[0]) for module in imported(tree)
              if module.split(".")[0] in DRIVERS - SHARED_STATE[1]]
    assert others == []


def test_the_check_catches_a_driver_imported_inside_a_function() -> None:
    tree = ast.parse("def f():\n    import importlib\n    from asyncpg import connect\n"
                     "    importlib.import_module('sqlite3')\n")
    assert [m for m in imported(tree) if m.split(".")[0] in DRIVERS] == [
        "asyncpg", "asyncpg.connect", "sqlite3"]


def test_quality_never_imports_the_store() -> None:
    offenders = [f"{name} imports {module}" for name, tree in modules()
                 if name.startswith("taskroute/quality/")
                 for module in imported(tree, runtime_only=True)
                 if module == "taskroute.store" or module.startswith("taskroute.store.")]
    assert offenders == []


def _package_of(name: str) -> str:
    """taskroute/gateway/app.py → taskroute.gateway; taskroute/router.py → taskroute.router."""
    parts = name.removesuffix(".py").split("/")
    return ".".join(parts[:2]).removesuffix(".__init__")


def package_cycles() -> list[tuple[str, ...]]:
    """Groups of packages (and top-level modules) that import each other, at run time."""
    found = modules()
    units = {_package_of(name) for name, _ in found}
    graph: dict[str, set[str]] = {}
    for name, tree in found:
        here = _package_of(name)
        for module in imported(tree, runtime_only=True):
            there = ".".join(module.split(".")[:2])
            if there in units and there != here:
                graph.setdefault(here, set()).add(there)
    reach = {node: _reachable(graph, node) for node in graph}
    return sorted({tuple(sorted(n for n in reach if n in reach[node] and node in reach[n]))
                   for node in graph if node in reach[node]})


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_no_package_import_cycles() -> None:
    assert package_cycles() == []
