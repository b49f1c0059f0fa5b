"""The policy's `agent:` section: each step's route as a task class, a tier or `by task`; the
run's limits; unknown and ambiguous names refused with the file and line; said in prose."""

from __future__ import annotations

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.policy.model import StepRoute
from taskroute.policy.prose import describe_policy

BASE = """
name: agents
models:
  p/small: {tier: fast, price: {input: 1, output: 2}}
  p/large: {tier: strong, price: {input: 10, output: 20}}
tiers:
  fast: {use: p/small, escalate to: [p/large]}
  strong: {use: p/large}
tasks:
  chat: fast
  tool_use: fast
  high_stakes: strong
"""


def test_steps_route_by_task_class_tier_or_the_requests_class() -> None:
    policy = parse_policy(BASE + """
agent:
  plan: tool_use
  execute: fast
  finalize: by task
  max steps: 5
  max cost: 0.25
  deadline: 90s
  tool timeout: 2s
  parallel tools: 3
""")
    spec = policy.agent
    assert spec.plan == StepRoute(task="tool_use")
    assert spec.execute == StepRoute(tier="fast")
    assert spec.finalise == StepRoute()
    assert (spec.max_steps, spec.max_cost_usd, spec.deadline_s) == (5, 0.25, 90.0)
    assert (spec.tool_timeout_s, spec.parallel_tools) == (2.0, 3)
    prose = describe_policy(policy)
    assert ("the tool_use class's tier (fast) plans (the first step, which picks the tools), "
            "the fast tier executes") in prose
    assert "the tier of the user's request's class writes the answer" in prose
    assert "3 at most, each within 2s" in prose
    assert "A run stops at 5 model steps, $0.25 or 90s, whichever comes first," in prose


def test_without_the_section_tool_steps_go_as_tool_use_and_the_answer_by_task() -> None:
    for policy in (parse_policy(BASE), load_default_policy()):
        assert policy.agent.plan == policy.agent.execute == StepRoute(task="tool_use")
        assert policy.agent.finalise == StepRoute()
    no_tool_use = parse_policy(BASE.replace("  tool_use: fast\n", ""))
    assert no_tool_use.agent.plan == StepRoute()
    assert "A run stops after 8 model steps" in describe_policy(load_default_policy())


@pytest.mark.parametrize(("section", "problem"), [
    ("agent: {plan: nowhere}", r"a tier \(fast, strong\) or a task class \(chat, tool_use"),
    ("agent: {plans: fast}", "unknown key 'plans'"),
    ("agent: {max steps: 0}", "expected a whole number of at least 1"),
    ("agent: {tool timeout: 0s}", "above zero"),
    ("agent: {finalise: by task, finalize: by task}", "not both"),
])
def test_a_bad_agent_section_names_the_line_and_key(section: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem) as caught:
        parse_policy(BASE + section, file="agents.yaml")
    assert "agents.yaml:" in str(caught.value)


def test_a_name_both_tier_and_task_is_refused() -> None:
    text = BASE.replace("  chat: fast", "  chat: fast\n  fast: {tier: fast, meaning: quick}")
    with pytest.raises(PolicyError, match="both a tier and a task class"):
        parse_policy(text + "agent: {plan: fast}")
