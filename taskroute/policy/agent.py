"""The policy's `agent:` section: how `Router.run` routes each step of an agent run, and where a
run stops.

    agent:
      plan: tool_use      # the first step, which picks the tools: a task class, or a tier
      execute: fast       # each step after tool results, while the model keeps calling tools
      finalise: by task   # the answer: the tier of the user's request's class
      max steps: 8        # model calls in one run
      max cost: 0.50      # USD, every step's calls together
      deadline: 2m        # the whole run, tool calls included
      tool timeout: 30s   # each tool call
      parallel tools: 8   # tool calls running at once
"""

from __future__ import annotations

from taskroute.policy.model import AgentSpec, Policy, StepRoute
from taskroute.policy.nodes import Node

SECTION = "agent"
BY_TASK = "by task"
_ROUTES = ("plan", "execute", "finalise", "finalize")
_KEYS = (*_ROUTES, "max steps", "max cost", "deadline", "tool timeout", "parallel tools")


def parse_agent(node: Node, tiers: tuple[str, ...], tasks: tuple[str, ...]) -> AgentSpec:
    f = node.fields(_KEYS)
    if "finalise" in f and "finalize" in f:
        f["finalize"].fail("give 'finalise' or 'finalize', not both")
    default = default_agent(tasks)
    routes = {key: _route(f[key], tiers, tasks) for key in _ROUTES if key in f}
    deadline = f["deadline"].seconds() if "deadline" in f else None
    if deadline is not None and deadline <= 0:
        f["deadline"].fail("expected a duration above zero, such as 2m")
    timeout = f["tool timeout"].seconds() if "tool timeout" in f else default.tool_timeout_s
    if timeout <= 0:
        f["tool timeout"].fail("expected a duration above zero, such as 30s")
    return AgentSpec(
        plan=routes.get("plan", default.plan),
        execute=routes.get("execute", default.execute),
        finalise=routes.get("finalise") or routes.get("finalize") or default.finalise,
        max_steps=f["max steps"].integer(low=1) if "max steps" in f else default.max_steps,
        max_cost_usd=f["max cost"].number(low=0) if "max cost" in f else None,
        deadline_s=deadline,
        tool_timeout_s=timeout,
        parallel_tools=f["parallel tools"].integer(low=1) if "parallel tools" in f
        else default.parallel_tools,
    )


def default_agent(tasks: tuple[str, ...]) -> AgentSpec:
    """Tool steps as the tool_use class (when the policy has it), the answer by task."""
    tool_steps = StepRoute(task="tool_use") if "tool_use" in tasks else StepRoute()
    return AgentSpec(plan=tool_steps, execute=tool_steps)


def _route(node: Node, tiers: tuple[str, ...], tasks: tuple[str, ...]) -> StepRoute:
    value = node.text()
    if value == BY_TASK:
        return StepRoute()
    if value in tiers and value in tasks:
        node.fail(f"{value!r} is both a tier and a task class; rename one")
    if value in tiers:
        return StepRoute(tier=value)
    if value in tasks:
        return StepRoute(task=value)
    node.fail(f"expected {BY_TASK!r}, a tier ({', '.join(tiers)}) or a task class "
              f"({', '.join(tasks)}), got {value!r}")


def describe_agent(policy: Policy) -> str:
    """The section as sentences (`taskroute policy show`)."""
    spec = policy.agent

    def route(step: StepRoute) -> str:
        if step.task is not None and step.task in policy.tasks:
            return f"{step.describe()} ({policy.tasks[step.task].tier})"
        return step.describe()

    limits = [f"{spec.max_steps} model step{'s' if spec.max_steps != 1 else ''}"]
    if spec.max_cost_usd is not None:
        limits.append(f"${spec.max_cost_usd:,.2f}")
    if spec.deadline_s is not None:
        limits.append(f"{spec.deadline_s:g}s")
    stops = (f"after {limits[0]}" if len(limits) == 1
             else f"at {', '.join(limits[:-1])} or {limits[-1]}, whichever comes first,")
    return (
        f"In an agent run (router.run with tools), {route(spec.plan)} plans (the first step, "
        f"which picks the tools), {route(spec.execute)} executes (each step after tool "
        f"results) and {route(spec.finalise)} writes the answer; a tool step that answers "
        "instead is the answer when its tier is at least the finaliser's, else the finaliser "
        "answers from the same transcript (the draft is paid for, not used). The independent "
        f"tool calls of a step run at once, {spec.parallel_tools} at most, each within "
        f"{spec.tool_timeout_s:g}s. A run stops {stops} and says which limit it reached.")
