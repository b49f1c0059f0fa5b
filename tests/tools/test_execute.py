"""Running a model's tool calls: all at once up to a cap, each within its timeout, results in the
calls' order as `tool` messages; every failure a result the model can read, never a raise."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from taskroute.tools import Tools, run_tool_calls


def call(name: str, arguments: Any = None, call_id: str | None = None) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"id": call_id or f"call_{name}", "type": "function",
            "function": {"name": name, "arguments": text}}


async def test_independent_calls_run_at_once_and_come_back_in_call_order() -> None:
    started: list[str] = []
    all_started = asyncio.Event()
    tools = Tools()

    async def fetch(what: str) -> dict[str, str]:
        started.append(what)
        if len(started) == 3:
            all_started.set()
        await all_started.wait()   # run one by one, the first would wait for ever (a timeout)
        return {"got": what}

    tools.add(fetch)
    calls = [call("fetch", {"what": w}, f"call_{w}") for w in ("c", "a", "b")]
    results = await run_tool_calls(calls, tools, timeout_s=5)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert [r.message for r in results] == [
        {"role": "tool", "tool_call_id": f"call_{w}", "content": json.dumps({"got": w},
                                                                           separators=(",", ":"))}
        for w in ("c", "a", "b")]


async def test_the_concurrency_cap_holds() -> None:
    running = 0
    most = 0
    tools = Tools()

    @tools.add
    async def work(n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return n * 2

    results = await run_tool_calls([call("work", {"n": n}, str(n)) for n in range(6)], tools,
                                   concurrency=2)
    assert [r.content for r in results] == ["0", "2", "4", "6", "8", "10"]
    assert most == 2


async def test_failures_become_results_the_model_can_read() -> None:
    cancelled = asyncio.Event()
    tools = Tools()

    @tools.add
    async def boom(reason: str) -> str:
        raise RuntimeError(f"the backend said {reason}")

    @tools.add(timeout_s=0.05)
    async def slow() -> str:
        try:
            await asyncio.Event().wait()     # never set: only the timeout ends it
        finally:
            cancelled.set()
        return "never"

    @tools.add
    async def add(a: int, b: int = 0) -> int:
        return a + b

    results = await run_tool_calls([
        call("boom", {"reason": "503"}), call("slow"), call("add", "{not json"),
        call("add", {"b": 2}), call("add", {"a": "x"}), call("nope"), call("add", "[1, 2]"),
        call("add", {"a": "3", "b": 4}),
    ], tools, timeout_s=5)
    statuses = [r.status for r in results]
    assert statuses == ["error", "timeout", "bad_arguments", "bad_arguments", "bad_arguments",
                        "unknown_tool", "bad_arguments", "ok"]
    text = [r.content for r in results]
    assert text[0] == "error: boom failed: RuntimeError: the backend said 503"
    assert text[1] == "error: slow did not finish within 0.05s"
    assert cancelled.is_set()                 # the async tool was cancelled, not left running
    assert "not valid JSON" in text[2]
    assert "missing required field `a`" in text[3]
    assert "Expected `int`" in text[4]
    assert text[5] == "error: there is no tool named 'nope'; the tools are: boom, slow, add"
    assert "expected a JSON object, got list" in text[6]
    assert text[7] == "7"                     # "3" read as the int the signature asks for
    assert all(r.content.startswith("error: ") for r in results[:7])


async def test_a_sync_tool_runs_in_a_thread_and_never_blocks_the_loop() -> None:
    released = threading.Event()
    tools = Tools()

    def blocking_lookup(key: str) -> str:
        # waits for the async tool below: on the loop's thread it would wait for ever
        return key if released.wait(timeout=5) else "the loop was blocked"

    async def release() -> str:
        await asyncio.sleep(0)
        released.set()
        return "released"

    tools.add(blocking_lookup)
    tools.add(release)
    results = await run_tool_calls([call("blocking_lookup", {"key": "k1"}), call("release")],
                                   tools, timeout_s=10)
    assert [r.content for r in results] == ["k1", "released"]
    assert threading.current_thread() is threading.main_thread()


async def test_a_sync_tool_past_its_timeout_is_a_timeout_result() -> None:
    gate = threading.Event()
    tools = Tools()
    tools.add(lambda: gate.wait(5) and "late", name="stuck", timeout_s=0.05)
    try:
        [result] = await run_tool_calls([call("stuck")], tools)
    finally:
        gate.set()   # let the abandoned thread finish
    assert result.status == "timeout"


def test_the_schema_comes_from_the_signature_and_docstring() -> None:
    tools = Tools()

    @tools.add
    def weather(city: str, days: int = 1, unit: str | None = None) -> str:
        """Today's forecast for a city.

        Longer notes the model does not need.

        Args:
            city: the city's name, in English
            days (int): how many days ahead
        """
        return city

    assert tools.specs() == [{"type": "function", "function": {
        "name": "weather",
        "description": "Today's forecast for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "the city's name, in English"},
            "days": {"type": "integer", "default": 1, "description": "how many days ahead"},
            "unit": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        }, "required": ["city"]},
    }}]


async def test_an_explicit_schema_is_checked_with_jsonschema() -> None:
    tools = Tools()
    schema = {"type": "object", "properties": {"q": {"type": "string", "minLength": 2}},
              "required": ["q"], "additionalProperties": False}
    tools.add(lambda q: f"found {q}", name="search", description="Search.", parameters=schema)
    assert tools.specs()[0]["function"]["parameters"] == schema
    ok, short = await run_tool_calls([call("search", {"q": "cats"}), call("search", {"q": "c"})],
                                     tools)
    assert ok.content == "found cats"
    assert short.status == "bad_arguments" and "too short" in short.content


def test_tools_refuse_what_a_model_could_not_call() -> None:
    tools = Tools()
    tools.add(lambda: 1, name="one")
    with pytest.raises(ValueError, match="already a tool named 'one'"):
        tools.add(lambda: 2, name="one")
    with pytest.raises(ValueError, match="tool name"):
        tools.add(lambda: 2, name="has space")

    def positional(*values: int) -> int:
        return sum(values)

    with pytest.raises(ValueError, match="by name"):
        tools.add(positional)
    assert Tools.of({"two": lambda: 2}).names == ("two",)
