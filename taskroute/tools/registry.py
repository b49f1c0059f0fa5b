"""The application's tools: each a function (sync or async) with the JSON Schema a request offers
it by — made from its signature and docstring (through msgspec, which then also checks and
converts the model's arguments) or given outright (checked with jsonschema).

    tools = Tools()

    @tools.add
    async def weather(city: str, days: int = 1) -> dict[str, float]:
        \"\"\"Today's forecast for a city.

        Args:
            city: the city's name, in English
        \"\"\"

    request = {"messages": [...], "tools": tools.specs()}
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import msgspec

ToolFunction = Callable[..., Any]
_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?):\s*$")


class BadArguments(ValueError):
    """A model's arguments that the tool's schema does not accept (the model reads why)."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    function: ToolFunction
    description: str
    parameters: dict[str, Any]                  # JSON Schema of the arguments object
    timeout_s: float | None = None              # None: the run's per-call timeout
    _arguments: type[msgspec.Struct] | None = field(default=None, repr=False)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def spec(self) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry (the Anthropic adapter translates it)."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments to call the function with; `BadArguments` says what is wrong."""
        if self._arguments is not None:
            try:
                value = msgspec.convert(dict(arguments), self._arguments, strict=False)
            except msgspec.ValidationError as exc:
                raise BadArguments(str(exc)) from None
            return {name: getattr(value, name) for name in self._arguments.__struct_fields__}
        import jsonschema

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.parameters).iter_errors(dict(arguments)))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            raise BadArguments(f"{error.message}" + (f" at '{where}'" if where else ""))
        return dict(arguments)


def tool(
    function: ToolFunction, *, name: str | None = None, description: str | None = None,
    parameters: Mapping[str, Any] | None = None, timeout_s: float | None = None,
) -> Tool:
    """A `Tool` for `function`: its schema from the signature unless `parameters` is given."""
    doc = inspect.getdoc(function) or ""
    summary, notes = _docstring(doc)
    name = name or function.__name__
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(f"a tool name is 1-64 letters, digits, _ or -: {name!r}")
    if parameters is not None:
        return Tool(name, function, description if description is not None else summary,
                    dict(parameters), timeout_s)
    arguments = _arguments_struct(function, name)
    return Tool(name, function, description if description is not None else summary,
                _schema(arguments, notes), timeout_s, arguments)


def _arguments_struct(function: ToolFunction, name: str) -> type[msgspec.Struct]:
    hints = typing.get_type_hints(function)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.POSITIONAL_ONLY):
            raise ValueError(f"tool {name}: the model passes arguments by name; "
                             f"{parameter.name} cannot be one")
        if parameter.kind is parameter.VAR_KEYWORD:
            continue
        kind = hints.get(parameter.name, Any)
        if parameter.default is parameter.empty:
            fields.append((parameter.name, kind))
        else:
            fields.append((parameter.name, kind, parameter.default))
    return msgspec.defstruct(name, fields, kw_only=True)


def _schema(arguments: type[msgspec.Struct], notes: Mapping[str, str]) -> dict[str, Any]:
    name = arguments.__name__
    document = msgspec.json.schema(arguments)
    definitions: dict[str, Any] = document.get("$defs", {})
    schema: dict[str, Any] = definitions.pop(name)
    schema.pop("title", None)
    for key, text in notes.items():
        if key in schema.get("properties", {}):
            schema["properties"][key].setdefault("description", text)
    if definitions:  # nested types (a Struct, a dataclass): their refs point at the root
        schema["$defs"] = definitions
    return schema


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and each argument's line under `Args:` (Google style)."""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    notes: dict[str, str] = {}
    section = None
    for line in doc.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section = heading.group(1)
            continue
        match = _ARG_LINE.match(line)
        if section in ("Args", "Arguments", "Parameters") and match:
            notes[match.group(1)] = match.group(2).strip()
    return summary, notes


class Tools:
    """The tools an application offers a model, by name; `specs()` is the request's `tools`."""

    def __init__(self, functions: Iterable[ToolFunction | Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for function in functions:
            self.add(function)

    @classmethod
    def of(cls, given: ToolsLike) -> Tools:
        """`given` as a `Tools`: itself, a name → function mapping, or functions."""
        if isinstance(given, Tools):
            return given
        if isinstance(given, Mapping):
            made = cls()
            for name, function in given.items():
                made.add(function if isinstance(function, Tool) and function.name == name
                         else tool(function.function if isinstance(function, Tool)
                                   else function, name=name))
            return made
        return cls(given)

    @overload
    def add(self, function: ToolFunction | Tool, **settings: Any) -> Tool: ...
    @overload
    def add(self, function: None = None, **settings: Any) -> Callable[[ToolFunction], Tool]: ...

    def add(self, function: ToolFunction | Tool | None = None, **settings: Any
            ) -> Tool | Callable[[ToolFunction], Tool]:
        """Add a function (or use as a decorator, bare or with `name`, `description`,
        `parameters`, `timeout_s`); a second tool of one name is refused."""
        if function is None:
            return lambda f: self.add(f, **settings)
        made = function if isinstance(function, Tool) else tool(function, **settings)
        if made.name in self._tools:
            raise ValueError(f"there is already a tool named {made.name!r}")
        self._tools[made.name] = made
        return made

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self._tools.values()]


# What a caller may hand `Router.run` as its tools.
ToolsLike = Tools | Mapping[str, ToolFunction | Tool] | Iterable[ToolFunction | Tool]
