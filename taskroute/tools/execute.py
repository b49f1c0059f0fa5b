"""Running the tool calls of one model answer: every call at once (up to a cap), each within its
timeout, the results back as the `tool` messages the next request needs, in the calls' order.

A call never raises into the caller: an unknown tool, arguments that are not JSON or that the
schema refuses, an exception and a timeout each become a result the model can read ("error:
..."), so it can try again or answer without. Sync tools run in a worker thread, so they never
block the event loop; a sync tool past its timeout is abandoned (a thread cannot be stopped: it
finishes in the background), an async one is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from taskroute.tools.registry import BadArguments, Tool, Tools

ToolStatus = Literal["ok", "error", "timeout", "unknown_tool", "bad_arguments"]
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    name: str
    status: ToolStatus
    content: str                      # what the model reads
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def message(self) -> dict[str, Any]:
        """The `tool` message answering the call (OpenAI's shape; the Anthropic adapter sends
        it as a `tool_result` block)."""
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content}


async def run_tool_calls(
    calls: Sequence[Mapping[str, Any]], tools: Tools, *, timeout_s: float = DEFAULT_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ToolResult]:
    """Run `calls` (a response's `tool_calls`, OpenAI's shape — what every adapter returns)
    concurrently, at most `concurrency` at a time, each within its tool's timeout or
    `timeout_s`; the results in the order of `calls`."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Mapping[str, Any]) -> ToolResult:
        async with slots:
            return await run_tool_call(call, tools, timeout_s=timeout_s)

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def run_tool_call(
    call: Mapping[str, Any], tools: Tools, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ToolResult:
    """One call, its outcome as a result whatever happens (cancellation apart)."""
    call_id = str(call.get("id") or "")
    function = call.get("function")
    function = function if isinstance(function, Mapping) else {}
    name = str(function.get("name") or "")
    started = time.perf_counter()

    def result(status: ToolStatus, content: str) -> ToolResult:
        return ToolResult(call_id, name, status, content,
                          round(time.perf_counter() - started, 6))

    found = tools.get(name)
    if found is None:
        known = ", ".join(tools.names) or "none"
        return result("unknown_tool", f"error: there is no tool named {name!r}; the tools are: "
                                      f"{known}")
    try:
        kwargs = found.bind(_arguments(function.get("arguments")))
    except BadArguments as exc:
        return result("bad_arguments", f"error: the arguments for {name} are not valid: {exc}")
    limit = found.timeout_s if found.timeout_s is not None else timeout_s
    try:
        async with asyncio.timeout(limit):
            value = await _call(found, kwargs)
    except TimeoutError:
        return result("timeout", f"error: {name} did not finish within {limit:g}s")
    except Exception as exc:  # the tool's own failure: the model reads it, the run goes on
        return result("error", f"error: {name} failed: {type(exc).__name__}: {exc}")
    return result("ok", _text(value))


def _arguments(raw: Any) -> Mapping[str, Any]:
    """The call's arguments: a JSON object as text (OpenAI), or already decoded."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadArguments(f"they are not valid JSON ({exc.msg} at character {exc.pos})"
                               ) from None
    if not isinstance(raw, Mapping):
        raise BadArguments(f"expected a JSON object, got {type(raw).__name__}")
    return raw


async def _call(found: Tool, kwargs: dict[str, Any]) -> Any:
    if found.is_async:
        return await found.function(**kwargs)
    value = await asyncio.to_thread(found.function, **kwargs)
    if asyncio.iscoroutine(value):  # a sync wrapper around a coroutine function
        return await value
    return value


def _text(value: Any) -> str:
    """A tool's return value as the text the model reads: a string as it is, else JSON."""
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return str(value)
