"""Agent runs: a task needing three independent tools (300 ms each) and a final answer.

    .venv/bin/python bench/agent.py [--runs 5]

Two figures, side by side:
1. One model answer's three tool calls run one by one, then at once (`taskroute.tools`): wall
   time of the tool calls alone.
2. The whole run through `Router.run` against the SIMULATED stand-in upstream on 127.0.0.1 —
   a fast model (gpt-4.1-mini's list price, ~0.2 s to first token) and a strong one
   (claude-opus-4-5's, ~0.8 s) — with every step on the strong model, then with the steps
   routed (tool steps to the fast tier, the answer to the strong tier its class asks for),
   then routed with the tools run one by one: wall time and cost per run.

The stand-in's latencies are set here (profiles below), not measured from real vendors; costs
are the policy's list prices times the stand-in's token counts. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskroute.policy.loader import parse_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.tools import Tools, run_tool_calls

TOOL_S = 0.3
PROFILES = {"fast": ModelProfile(first_token_s=0.2, tokens_per_s=250),
            "strong": ModelProfile(first_token_s=0.8, tokens_per_s=60)}
POLICY = """
name: agent-bench
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
models:
  sim/fast: {{tier: fast, price: {{input: 0.40, output: 1.60}}}}
  sim/strong: {{tier: strong, price: {{input: 5.00, output: 25.00}}}}
tiers:
  fast: {{use: sim/fast, escalate to: [sim/strong]}}
  strong: {{use: sim/strong}}
tasks:
  chat: {{tier: fast, gates: [non_empty]}}
  tool_use: {{tier: fast, gates: [non_empty]}}
  high_stakes: {{tier: strong, gates: [non_empty, refusal]}}
classify:
  - as: high_stakes
    system says: [final answer to the customer]
classifier: false
agent: {agent}
"""
SETUPS = (
    ("all steps on the strongest", "{plan: strong, execute: strong, finalise: strong}"),
    ("routed steps", "{plan: tool_use, execute: tool_use, finalise: by task}"),
    ("routed, tools one by one", "{plan: tool_use, execute: tool_use, parallel tools: 1}"),
)
SYSTEM = ("You write the final answer to the customer. Use the tools for today's facts. "
          + "Keep the tone warm and the plan concrete. " * 40)
PROMPT = "Plan my afternoon in Lyon: the weather, what is on, and how busy the trams are."


def make_tools() -> Tools:
    tools = Tools()

    @tools.add
    async def weather(city: str) -> dict[str, Any]:
        """Today's weather in a city."""
        await asyncio.sleep(TOOL_S)
        return {"city": city, "sky": "clear", "high_c": 21}

    @tools.add
    async def events(city: str) -> list[str]:
        """What is on today in a city."""
        await asyncio.sleep(TOOL_S)
        return ["a jazz concert at 6pm", "the silk museum, open till 7pm"]

    @tools.add
    async def transit(city: str) -> dict[str, str]:
        """How busy the city's public transport is now."""
        await asyncio.sleep(TOOL_S)
        return {"trams": "light", "metro": "normal"}

    return tools


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):8.3f} s {p90:8.3f} s {ordered[-1]:8.3f} s"


async def tool_calls_only(runs: int) -> None:
    tools = make_tools()
    calls = [{"id": f"call_{t.name}", "type": "function",
              "function": {"name": t.name, "arguments": '{"city": "Lyon"}'}} for t in tools]
    print(f"1. The three tool calls of one answer ({TOOL_S * 1000:.0f} ms each), {runs} runs")
    print(f"   {'':28} {'p50':>10} {'p90':>10} {'max':>10}")
    times: dict[str, list[float]] = {}
    for name, cap in (("one by one", 1), ("at once", 8)):
        for _ in range(runs):
            began = time.perf_counter()
            results = await run_tool_calls(calls, tools, concurrency=cap)
            times.setdefault(name, []).append(time.perf_counter() - began)
            assert all(r.ok for r in results), results
        print(f"   {name:28} {spread(times[name])}")
    ratio = statistics.median(times["one by one"]) / statistics.median(times["at once"])
    print(f"   at once is {ratio:.2f}x faster (p50)\n")


async def agent_runs(runs: int) -> None:
    print(f"2. The whole agent run (plan -> three tools -> answer), {runs} runs each")
    print(f"   {'':28} {'steps':>5} {'fast/strong calls':>18} {'wall p50':>10} "
          f"{'wall max':>10} {'cost per run':>14}")
    request = ChatRequest.from_prompt(PROMPT, system=SYSTEM)
    rows: dict[str, tuple[float, float]] = {}
    async with SimulatedUpstream(PROFILES) as upstream:
        for label, agent in SETUPS:
            router = Router(parse_policy(POLICY.format(url=upstream.url, agent=agent)),
                            classifier=False)
            walls: list[float] = []
            costs: list[float] = []
            shape = ""
            for _ in range(runs):
                upstream.reset()
                for model in PROFILES:
                    upstream.call_tools_in_parallel(model)
                began = time.perf_counter()
                result = await router.run(request, tools=make_tools())
                walls.append(time.perf_counter() - began)
                costs.append(result.record.total_cost_usd)
                assert result.record.decision.tier == "strong", result.record.decision
                shape = (f"{len(result.steps):>5} {upstream.requests['fast']:>9}/"
                         f"{upstream.requests['strong']:<8}")
            await router.aclose()
            cost = statistics.mean(costs)
            rows[label] = (statistics.median(walls), cost)
            print(f"   {label:28} {shape} {statistics.median(walls):8.3f} s "
                  f"{max(walls):8.3f} s {cost:12.6f} $")
    strong_wall, strong_cost = rows[SETUPS[0][0]]
    routed_wall, routed_cost = rows[SETUPS[1][0]]
    print(f"   routed / all strongest: cost {routed_cost / strong_cost:.2f}x, "
          f"wall time {routed_wall / strong_wall:.2f}x (p50)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    await tool_calls_only(max(args.runs * 2, 3))
    await agent_runs(args.runs)


if __name__ == "__main__":
    asyncio.run(main())
