"""Extension points, one `Registry` each: built-ins and installed plugins share one table.

    registry      entry-point group        an entry names                         built in
    PROVIDERS     taskroute.providers      factory(spec: ProviderSpec,            openai,
                                                   env: Mapping[str, str] | None)  anthropic,
                                                   -> Provider                      azure,
                                                                                    gemini,
                                                                                    bedrock
    GATES         taskroute.gates          factory(settings: Mapping[str, Any],   non_empty,
                                                   env: GateEnv) -> Gate, or a Gate  regex, ...
    CLASSIFIERS   taskroute.classifiers    factory(settings: ClassifierSettings)  linear
                                                   -> Classifier
    STORES        taskroute.stores         factory(url: str) -> Store             sqlite,
                                                                                  postgresql
    SESSIONS      taskroute.sessions       factory(url: str) -> SessionHistory    memory

A plugin is a distribution declaring entry points, e.g. in its pyproject.toml:

    [project.entry-points."taskroute.providers"]
    bedrock = "taskroute_bedrock:provider"

Built-ins are `"module:attr"` references too, so importing this module imports nothing else.
Installed entry points are read once, on the first lookup of a name that is not built in (or
on `entries()`), and an entry's object is imported when first used. A plugin that cannot be
imported, or whose factory fails (other than ValueError for bad settings, which the caller
places in the policy), raises `PluginError`: one line naming its distribution and entry point.
A built-in name is never taken over by a plugin, and of two plugins claiming one name the
first by distribution name keeps it; `taskroute plugins` lists the others as ignored.

Each package types its own door: `providers/registry.py`, `gates/registry.py`,
`classify/registry.py`, `store/registry.py`, `session.py`. This module stays below them all.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from taskroute.exceptions import ConfigError, PluginError, TaskrouteError

BUILT_IN = "built-in"


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered name: where it points and where it came from."""

    group: str
    name: str
    ref: str                          # "module:attr"
    distribution: str | None = None   # None: built into taskroute
    version: str | None = None
    ignored: str | None = None        # why a plugin entry is not used (its name is taken)

    @property
    def origin(self) -> str:
        if self.distribution is None:
            return BUILT_IN
        return f"distribution {self.distribution} {self.version} ({self.ref})"


class Registry:
    """The names of one extension point → their objects, imported on first use."""

    def __init__(
        self, group: str, what: str, builtins: Mapping[str, str],
        valid: Callable[[Any], bool] = callable,
    ) -> None:
        self.group = group
        self.what = what            # "provider kind", for messages
        self._builtins = {name: Entry(group, name, ref) for name, ref in builtins.items()}
        self._valid = valid
        self._loaded: dict[str, Any] = {}
        self._lock = threading.RLock()  # a plugin may look up another while importing

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.entry(name) is not None

    def names(self) -> list[str]:
        return sorted(e.name for e in self.entries() if e.ignored is None)

    def entries(self) -> list[Entry]:
        """Built-ins, then installed plugins (ignored ones too, marked), each sorted by name."""
        plugins = _discovered().get(self.group, [])
        taken = set(self._builtins)
        listed = sorted(self._builtins.values(), key=lambda e: e.name)
        for entry in sorted(plugins, key=lambda e: (e.name, e.distribution or "")):
            if entry.name in taken:
                entry = _ignored(entry, self._builtins.get(entry.name), listed)
            taken.add(entry.name)
            listed.append(entry)
        return listed

    def entry(self, name: str) -> Entry | None:
        if name in self._builtins:  # no metadata scan for a built-in name
            return self._builtins[name]
        return next((e for e in self.entries() if e.name == name and e.ignored is None), None)

    def unknown(self, name: str) -> str:
        return f"unknown {self.what} '{name}'; known: {', '.join(self.names()) or 'none'}"

    def load(self, name: str) -> Any:
        """The object `name` refers to, imported once; `PluginError` when unknown or broken."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        if entry is None:
            raise PluginError(self.unknown(name))
        with self._lock:
            if name not in self._loaded:
                obj = _import(entry, self.what)
                if not self._valid(obj):
                    raise PluginError(f"{_describe(entry, self.what)} is not a usable "
                                      f"{self.what} (got {type(obj).__name__})")
                self._loaded[name] = obj
        return self._loaded[name]

    @contextmanager
    def calling(self, name: str) -> Iterator[None]:
        """Around a call of a plugin's factory: what it raises besides ValueError (bad settings,
        which the caller places in the policy) and taskroute's own errors becomes one
        `PluginError` line naming the plugin. A built-in's bug keeps its traceback."""
        try:
            yield
        except (ValueError, TaskrouteError):
            raise
        except Exception as exc:
            entry = self.entry(name)
            if entry is None or entry.distribution is None:
                raise
            raise PluginError(f"{_describe(entry, self.what)} failed: {_one_line(exc)}"
                              ) from None


def _ignored(entry: Entry, builtin: Entry | None, listed: list[Entry]) -> Entry:
    holder = builtin or next(e for e in listed if e.name == entry.name and e.ignored is None)
    why = f"the name '{entry.name}' is taken by {holder.origin}"
    return Entry(entry.group, entry.name, entry.ref, entry.distribution, entry.version, why)


def _describe(entry: Entry, what: str) -> str:
    if entry.distribution is None:
        return f"the built-in {what} '{entry.name}' ({entry.ref})"
    return (f"the {what} '{entry.name}' from distribution {entry.distribution} "
            f"{entry.version} (entry point {entry.name} = {entry.ref} in {entry.group})")


def _import(entry: Entry, what: str) -> Any:
    module_name, _, attr = entry.ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except Exception as exc:  # a plugin may fail any way at import; report it in one line
        raise PluginError(f"{_describe(entry, what)} cannot be loaded: {_one_line(exc)}"
                          ) from None
    return obj


def _one_line(exc: BaseException) -> str:
    detail = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


# -- discovery: every group's entry points, read from installed metadata once -------------------

_GROUPS: set[str] = set()
_found: dict[str, list[Entry]] | None = None
_found_lock = threading.Lock()


def _discovered() -> dict[str, list[Entry]]:
    global _found
    if _found is None:
        with _found_lock:
            if _found is None:
                _found = _scan(_GROUPS)
    return _found


def _scan(groups: Iterable[str]) -> dict[str, list[Entry]]:
    from importlib import metadata

    wanted = set(groups)
    found: dict[str, list[Entry]] = {}
    seen: set[str] = set()
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"] or "?"
            key = name.lower().replace("_", "-")
            if key in seen:  # the same distribution twice on sys.path: the first wins
                continue
            seen.add(key)
            points = [ep for ep in dist.entry_points if ep.group in wanted]
            version = dist.version
        except Exception:  # unreadable metadata is not ours to crash on
            continue
        for ep in points:
            found.setdefault(ep.group, []).append(
                Entry(ep.group, ep.name, ep.value, name, version))
    return found


def refresh() -> None:
    """Forget what was discovered and loaded, so entry points are read again (after installing
    a plugin in a running process, and in tests)."""
    global _found
    importlib.invalidate_caches()
    with _found_lock:
        _found = None
    for registry in ALL:
        registry._loaded.clear()


def _registry(group: str, what: str, builtins: Mapping[str, str],
              valid: Callable[[Any], bool] = callable) -> Registry:
    _GROUPS.add(group)
    return Registry(group, what, builtins, valid)


def _gate_like(obj: Any) -> bool:
    return callable(obj) or hasattr(obj, "check")


PROVIDERS = _registry("taskroute.providers", "provider kind", {
    "openai": "taskroute.providers.openai:build",
    "anthropic": "taskroute.providers.anthropic:build",
    "azure": "taskroute.providers.azure:build",
    "gemini": "taskroute.providers.gemini:build",
    "bedrock": "taskroute.providers.bedrock:build",
})
GATES = _registry("taskroute.gates", "gate", {
    "non_empty": "taskroute.gates.non_empty:build",
    "length": "taskroute.gates.length:build",
    "valid_json": "taskroute.gates.json_valid:build",
    "valid_json_if_asked": "taskroute.gates.json_valid:build_if_asked",
    "schema": "taskroute.gates.schema:build",
    "refusal": "taskroute.gates.refusal:build",
    "not_truncated": "taskroute.gates.truncation:build",
    "logprob": "taskroute.gates.logprob:build",
    "regex": "taskroute.gates.regex:build",
    "judge": "taskroute.gates.judge:build",
    "learned": "taskroute.gates.learned:build",
}, valid=_gate_like)
CLASSIFIERS = _registry("taskroute.classifiers", "classifier", {
    "linear": "taskroute.classify.learned:build",
})
STORES = _registry("taskroute.stores", "store", {
    "sqlite": "taskroute.store.sqlite:build",
    "postgresql": "taskroute.store.postgres_url:build",
    "postgres": "taskroute.store.postgres_url:build",
})
SESSIONS = _registry("taskroute.sessions", "session backend", {
    "memory": "taskroute.session:build_memory",
})
ALL: tuple[Registry, ...] = (PROVIDERS, GATES, CLASSIFIERS, STORES, SESSIONS)


def scheme(registry: Registry, url: str, example: str) -> str:
    """The registered name a `NAME:LOCATION` (or bare `NAME`) URL chooses; PluginError if none."""
    name = url.partition(":")[0].strip()
    if not name or name not in registry:
        raise PluginError(f"{registry.unknown(name or url)} ({registry.what} URLs are written "
                          f"NAME or NAME:LOCATION, e.g. {example})")
    return name


def open_url(registry: Registry, url: str, example: str) -> Any:
    """What the factory registered under `url`'s scheme builds from `url` (a store, a session
    history); `ConfigError` when the name is unknown, the location unusable or the plugin
    broken."""
    name = scheme(registry, url, example)
    factory = registry.load(name)
    try:
        with registry.calling(name):
            return factory(url)
    except ValueError as exc:
        raise ConfigError(f"{registry.what} {url!r}: {exc}") from None
