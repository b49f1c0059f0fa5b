"""`Router.run`: model steps and parallel tool calls in turn, each step routed by its own class
(tool steps to the tool-use tier, the answer to the request's class), escalation and gates per
step, limits that say which stopped the run, and one log entry for the whole run."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from taskroute.exceptions import AgentLimitReached, ChainExhausted
from taskroute.policy.loader import parse_policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import CLIENT_CLOSED, CLIENT_CLOSED_STATUS
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore
from taskroute.tools import Tools
from tests.calling.support import MemoryStore

POLICY = """
name: agent-tests
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
models:
  sim/small: {{tier: fast, price: {{input: 1, output: 2}}}}
  sim/medium: {{tier: balanced, price: {{input: 5, output: 10}}}}
  sim/large: {{tier: strong, price: {{input: 20, output: 40}}}}
tiers:
  fast: {{use: sim/small, escalate to: [sim/medium, sim/large]}}
  balanced: {{use: sim/medium, escalate to: [sim/large]}}
  strong: {{use: sim/large}}
tasks:
  chat: {{tier: fast, gates: [non_empty, refusal]}}
  tool_use: {{tier: fast, gates: [non_empty]}}
  high_stakes: {{tier: strong, gates: [non_empty, refusal]}}
classify:
  - as: high_stakes
    system says: [final answer to the customer]
classifier: false
when unsure: chat
calling:
  timeouts: {{connect: 1s, first token: 5s, total: 10s}}
  retries: 0
  backoff: {{first: 5ms, max: 20ms}}
{agent}
"""
CUSTOMER = "You write the final answer to the customer."


def make_router(upstream: SimulatedUpstream, agent: str = "", **kw: Any) -> Router:
    policy = parse_policy(POLICY.format(url=upstream.url, agent=agent), file="<agent policy>")
    return Router(policy, classifier=False, **kw)


def question(system: str | None = CUSTOMER) -> ChatRequest:
    return ChatRequest.from_prompt("Plan my day in Paris", system=system)


def real_tools(log: list[str]) -> Tools:
    """Three async tools on timers (one failing, one past its timeout) and a sync one."""
    tools = Tools()

    @tools.add
    async def weather(city: str) -> dict[str, Any]:
        """Today's weather in a city."""
        await asyncio.sleep(0.01)
        log.append("weather")
        return {"city": city, "sky": "sunny"}

    @tools.add
    async def news(city: str) -> str:
        """Local news."""
        await asyncio.sleep(0.01)
        raise ConnectionError("the news service is down")

    @tools.add(timeout_s=0.1)
    async def museums(city: str) -> str:
        """Museums open today."""
        await asyncio.Event().wait()   # never answers: its timeout ends it
        return "never"

    @tools.add
    def calendar(city: str) -> str:
        """The user's calendar (a blocking client)."""
        log.append(f"calendar in {threading.current_thread().name}")
        return "free after 2pm"

    return tools


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


async def test_steps_go_to_their_own_tiers_and_the_run_is_logged_once(
        upstream: SimulatedUpstream, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    router = make_router(upstream, store=store)
    upstream.call_tools_in_parallel("small", again=True, times=2)   # two rounds of four calls
    log: list[str] = []
    result = await router.run(question(), tools=real_tools(log), request_id="run-1")
    await router.aclose()

    steps = [(s.kind, s.decision.task, s.decision.tier, s.outcome) for s in result.steps]
    assert steps == [("plan", "tool_use", "fast", "tool calls"),
                     ("execute", "tool_use", "fast", "tool calls"),
                     ("execute", "tool_use", "fast", "draft"),       # fast < strong: handed on
                     ("finalise", "high_stakes", "strong", "answer")]
    assert dict(upstream.requests) == {"small": 3, "large": 1}
    assert result.record.answered_by == "sim/large" and result.record.decision.tier == "strong"
    assert [t.status for t in result.steps[0].tools] == ["ok", "error", "timeout", "ok"]
    assert log.count("weather") == 2
    assert all("MainThread" not in e for e in log if e.startswith("calendar"))
    # the finaliser read every tool result, failures included, as the model-readable text
    sent = upstream.last_body["large"]["messages"]
    results = [m["content"] for m in sent if m["role"] == "tool"]
    assert len(results) == 8
    assert "error: news failed: ConnectionError: the news service is down" in results
    assert "error: museums did not finish within 0.1s" in results
    assert json.loads(results[0]) == {"city": "Plan my day in Paris", "sky": "sunny"}
    assert [m["role"] for m in result.messages].count("tool") == 8

    with sqlite3.connect(tmp_path / "log.db") as conn:
        [(task, tier, answered, steps_json, cost)] = conn.execute(
            "SELECT task, tier, answered_by, steps, cost_usd FROM requests").fetchall()
        attempt_steps = [s for (s,) in conn.execute(
            "SELECT step FROM attempts WHERE request_id = 'run-1' ORDER BY seq")]
    assert (task, tier, answered) == ("high_stakes", "strong", "sim/large")
    assert [s["tier"] for s in json.loads(steps_json)] == ["fast", "fast", "fast", "strong"]
    assert attempt_steps == [1, 2, 3, 4]
    assert cost == pytest.approx(result.record.total_cost_usd)
    assert cost == pytest.approx(sum(s.cost_usd for s in result.steps))


async def test_a_chat_request_is_answered_by_the_tool_step_when_its_tier_is_enough(
        upstream: SimulatedUpstream) -> None:
    store = MemoryStore()
    router = make_router(upstream, store=store)
    upstream.call_tools_in_parallel("small", times=1)
    result = await router.run(question(system=None), tools=real_tools([]))
    await router.aclose()
    assert [(s.kind, s.outcome) for s in result.steps] == [("plan", "tool calls"),
                                                           ("execute", "answer")]
    assert "tool result" in result.text
    assert len(store.entries) == 1 and store.entries[0].record is result.record


async def test_each_step_escalates_and_is_gated_on_its_own(upstream: SimulatedUpstream) -> None:
    router = make_router(upstream)
    upstream.fail("small", 503, times=1)        # the plan step escalates to medium
    result = await router.run(question(system=None), tools=real_tools([]))
    first = result.steps[0]
    assert first.answered_by == "sim/medium" and first.attempts == 2
    assert [a.status for a in result.record.attempts if a.step == 1] == ["error", "ok"]
    assert result.record.escalated
    # a refusal passes the tool step's gates (non_empty) but not the answer's (chat: refusal):
    # a draft; the finaliser's own refusal is rejected by its gates and escalates to medium
    upstream.refuse("small", times=2)
    again = await router.run(question(system=None), tools=real_tools([]))
    await router.aclose()
    assert [(s.kind, s.outcome) for s in again.steps] == [
        ("plan", "draft"), ("finalise", "tool calls"), ("execute", "answer")]
    final = [a for a in again.record.attempts if a.step == 2]
    assert [(a.model, a.status) for a in final] == [("sim/small", "rejected"),
                                                    ("sim/medium", "ok")]
    assert final[0].verdicts[-1].gate == "refusal" and not final[0].verdicts[-1].passed


async def test_a_pinned_tier_and_the_step_limit(upstream: SimulatedUpstream) -> None:
    store = MemoryStore()
    router = make_router(upstream, "agent: {plan: balanced, execute: fast, max steps: 3}",
                         store=store)
    upstream.keep_calling_tools("small")            # never answers
    with pytest.raises(AgentLimitReached, match="limit of 3 model steps") as caught:
        await router.run(question(), tools=real_tools([]))
    await router.aclose()
    error = caught.value
    assert error.limit == "steps" and error.status_code == 422
    assert [s.decision.tier for s in error.record.steps] == ["balanced", "fast", "fast"]
    assert "agent section sends this step to the balanced tier" in " ".join(
        error.record.steps[0].decision.reasons)
    assert [m["role"] for m in error.messages][-1] == "tool"
    [entry] = store.entries
    assert entry.http_status == 422 and entry.record.status == "error"
    assert "AgentLimitReached" in (entry.record.error or "")


async def test_the_cost_limit_stops_before_a_step_it_cannot_pay_for(
        upstream: SimulatedUpstream) -> None:
    router = make_router(upstream)
    upstream.call_tools_in_parallel("small", times=1)
    with pytest.raises(AgentLimitReached, match="over its") as caught:
        await router.run(question(), tools=real_tools([]), max_cost_usd=0.0003)
    await router.aclose()
    assert caught.value.limit == "cost"
    assert caught.value.record.total_cost_usd <= 0.0003
    assert "large" not in upstream.requests          # the strong step never started


async def test_the_deadline_covers_tools_and_steps(upstream: SimulatedUpstream) -> None:
    router = make_router(upstream, "agent: {tool timeout: 5s}")
    upstream.call_tools_in_parallel("small", times=1)
    tools = Tools()

    @tools.add
    async def slow(city: str) -> str:
        await asyncio.sleep(5)
        return "late"

    with pytest.raises(AgentLimitReached, match=r"deadline of 0\.3s") as caught:
        await router.run(question(), tools=tools, deadline_s=0.3)
    await router.aclose()
    error = caught.value
    assert error.limit == "deadline" and error.status_code == 504
    assert error.record.steps[0].tools[0].status == "timeout"   # cut to the time left


async def test_a_failed_step_ends_the_run_logged_with_every_attempt(
        upstream: SimulatedUpstream) -> None:
    store = MemoryStore()
    router = make_router(upstream, store=store)
    for model in ("small", "medium", "large"):
        upstream.fail(model, 503)
    with pytest.raises(ChainExhausted) as caught:
        await router.run(question(), tools=real_tools([]))
    await router.aclose()
    [entry] = store.entries
    assert caught.value.record is entry.record
    assert [s.outcome for s in entry.record.steps] == ["error"]
    assert len(entry.record.attempts) == 3 and entry.http_status == 502


def test_run_sync_runs_async_and_sync_tools_without_a_loop() -> None:
    with SimulatedUpstream() as upstream:
        router = make_router(upstream)
        upstream.call_tools_in_parallel("small", times=1)
        log: list[str] = []
        result = router.run_sync(question(system=None), tools=real_tools(log))
        router.close()
    assert "tool result" in result.text
    assert sorted(e.split(" in ")[0] for e in log) == ["calendar", "weather"]
    assert all("taskroute-sync" not in e for e in log)   # the sync tool: a worker thread


async def test_an_anthropic_upstream_runs_the_same_loop(upstream: SimulatedUpstream) -> None:
    policy = parse_policy(POLICY.format(url=upstream.url, agent="").replace(
        f"{{api: openai, base url: '{upstream.url}/v1'}}",
        f"{{api: anthropic, base url: '{upstream.url}'}}"), file="<anthropic agent policy>")
    router = Router(policy, classifier=False)
    upstream.call_tools_in_parallel("small", times=1)
    result = await router.run(question(), tools=real_tools([]))
    await router.aclose()
    assert [(s.kind, s.outcome) for s in result.steps] == [
        ("plan", "tool calls"), ("execute", "draft"), ("finalise", "answer")]
    assert [t.call_id[:6] for t in result.steps[0].tools] == ["toolu_"] * 4
    # the four results went back as tool_result blocks of one user turn, as Anthropic asks
    turns = upstream.last_body["large"]["messages"]
    results = [b for b in turns[-1]["content"] if b["type"] == "tool_result"]
    assert turns[-1]["role"] == "user" and len(results) == 4
    assert turns[-2]["role"] == "assistant" and [b["type"] for b in turns[-2]["content"]] == [
        "tool_use"] * 4


async def test_a_cancelled_run_is_logged_with_the_steps_it_took(
        upstream: SimulatedUpstream) -> None:
    store = MemoryStore()
    router = make_router(upstream, store=store)
    upstream.call_tools_in_parallel("small", times=1)
    started = asyncio.Event()
    tools = Tools()

    @tools.add
    async def hang(city: str) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    running = asyncio.create_task(router.run(question(), tools=tools))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await router.aclose()
    [entry] = store.entries
    assert entry.http_status == CLIENT_CLOSED_STATUS
    assert entry.record.error == CLIENT_CLOSED
    assert [s.outcome for s in entry.record.steps] == ["tool calls"]
    assert entry.record.total_cost_usd > 0             # the plan step's call is paid for
