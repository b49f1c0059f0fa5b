"""Policy gate names → gates: built-ins, parameterised forms, your own, and clear failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from taskroute.exceptions import PolicyError, UpstreamTimeout
from taskroute.gates.base import GateEnv
from taskroute.gates.judge import JudgeGate, parse_score
from taskroute.gates.registry import GateRegistry
from taskroute.gates.runner import run_gates
from taskroute.plugins import GATES
from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, Choice, ResponseMessage
from taskroute.router import Router

BASE = """
models:
  a/small: {{tier: fast, price: {{input: 1, output: 1}}}}
  a/big: {{tier: strong, price: {{input: 9, output: 9}}}}
tiers:
  fast: {{use: a/small, escalate to: [a/big]}}
  strong: {{use: a/big}}
tasks:
  chat: {{tier: fast, gates: {gates}}}
  extraction: {{tier: fast}}
classifier: false
"""


def policy(gates: str) -> Any:
    return parse_policy(BASE.format(gates=gates), file="p.yaml")


def reply(text: str) -> ChatResponse:
    return ChatResponse(model="m", choices=[Choice(message=ResponseMessage(content=text))])


def test_default_policy_gates_all_resolve() -> None:
    Router(load_default_policy(), classifier=False)  # raises if any name is unknown
    for name in ("non_empty", "valid_json_if_asked", "schema", "not_truncated", "refusal"):
        entry = GATES.entry(name)
        assert entry is not None and entry.origin == "built-in"


def test_unknown_gate_fails_when_the_router_is_built_naming_gate_and_task() -> None:
    with pytest.raises(PolicyError) as caught:
        Router(policy("[non_empty, sparkles]"), classifier=False)
    message = str(caught.value)
    assert "unknown gate 'sparkles'" in message and "task chat" in message
    assert message.startswith("p.yaml") and "tasks.chat.gates" in message


def test_bad_gate_settings_fail_when_the_router_is_built() -> None:
    with pytest.raises(PolicyError, match=r"gate 'regex' in task chat: .*not valid"):
        Router(policy("[{regex: '('}]"), classifier=False)
    with pytest.raises(PolicyError, match="judge gate needs 'model'"):
        Router(policy("[{judge: {model: nowhere/x}}]"), classifier=False)


def test_parameterised_gates_from_yaml() -> None:
    p = policy("[{regex: '^[A-D]$'}, {length: {min: 1, max: 3}}, {logprob: {min confidence: 0.8}}]")
    gates = GateRegistry().build_for(p, "chat", "fast", GateEnv(p))
    assert [g.name for g in gates] == ["regex", "length", "logprob"]
    assert gates[2].min_confidence == 0.8  # type: ignore[attr-defined]


class Polite:
    name = "polite"

    def __init__(self, word: str = "please") -> None:
        self.word = word

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        return GateVerdict(self.name, self.word in answer.text)


def polite_factory(params: Mapping[str, Any], env: GateEnv) -> Polite:
    return Polite(str(params.get("word", "please")))


async def test_users_register_their_own_gates_by_factory_or_instance() -> None:
    p = policy("[{polite: {word: thanks}}, strict]")
    router = Router(p, classifier=False, gates={"polite": polite_factory, "strict": Polite()})
    gates = router.engine.gates_for(router.decide({"messages": [{"role": "user",
                                                                 "content": "hi"}]}))
    verdicts = await run_gates(gates, reply("thanks, please"), ChatRequest.from_prompt("x"))
    assert [v.passed for v in verdicts] == [True, True]
    verdicts = await run_gates(gates, reply("thanks"), ChatRequest.from_prompt("x"))
    assert [v.passed for v in verdicts] == [True, False]
    await router.aclose()


async def test_a_gate_that_raises_rejects_visibly() -> None:
    class Broken:
        name = "broken"

        def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
            raise KeyError("boom")

    (verdict,) = await run_gates([Broken()], reply("x"), ChatRequest.from_prompt("x"))
    assert not verdict.passed and "KeyError" in verdict.reason


def test_parse_score() -> None:
    assert parse_score("8") == 8
    assert parse_score("Score: 10/10") == 10
    assert parse_score("none") is None


async def test_judge_gate_scores_and_carries_its_cost() -> None:
    calls: list[tuple[str, ChatRequest]] = []

    async def grader(model: str, request: ChatRequest) -> tuple[ChatResponse, float]:
        calls.append((model, request))
        return reply("6" if "meh" in request.last_user_text else "9"), 0.002

    gate = JudgeGate("a/big", 7, grader)
    question = ChatRequest.from_prompt("What is 2+2?")
    good = await gate.check(reply("4, since 2+2=4"), question)
    bad = await gate.check(reply("meh"), question)
    assert good.passed and good.confidence == 0.9 and good.cost_usd == 0.002
    assert not bad.passed and "6/10" in bad.reason
    assert "What is 2+2?" in calls[0][1].last_user_text and calls[0][0] == "a/big"


async def test_judge_failure_lets_the_answer_through_with_a_note() -> None:
    async def down(model: str, request: ChatRequest) -> tuple[ChatResponse, float]:
        raise UpstreamTimeout("judge timed out")

    verdict = await JudgeGate("a/big", 7, down).check(reply("x"), ChatRequest.from_prompt("q"))
    assert verdict.passed and "failed" in verdict.reason


async def test_judge_runs_only_after_plain_gates_pass() -> None:
    called: list[str] = []

    async def grader(model: str, request: ChatRequest) -> tuple[ChatResponse, float]:
        called.append(model)
        return reply("9"), 0.0

    gates = [GATES.load("non_empty")({}, GateEnv(load_default_policy())),
             JudgeGate("a/big", 7, grader)]
    verdicts = await run_gates(gates, reply(""), ChatRequest.from_prompt("q"))
    assert [v.gate for v in verdicts] == ["non_empty"] and not called
