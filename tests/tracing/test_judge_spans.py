"""A judge gate's own model call is traced: a `judge <model>` span under the attempt whose
answer it grades, carrying the gate's verdict, with the judge's calls (retries, failover) as
CLIENT spans under it — through the real gateway, exported over OTLP/HTTP to a loopback
receiver. The stand-in judge echoes the grading prompt, so the question's leading number is
its score: 9 passes (min score 7), 4 fails on every model of the chain."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from taskroute.policy.model import Policy, RaceSpec
from taskroute.tracing.otel import OtelTracing
from tests.gateway.conftest import RunningGateway, StartGateway
from tests.tracing.common import (
    CLIENT_SPAN,
    CLIENT_TRACE,
    JUDGE,
    JUDGE_UPSTREAM,
    TRACEPARENT,
    judged_chat,
)
from tests.tracing.exporting import children, exported, receiver, tracing
from tests.tracing.otlp_receiver import OtlpReceiver, Span

__all__ = ["receiver", "tracing"]  # the fixtures

async def ask(gateway: RunningGateway, prompt: str) -> str:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=20) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="taskroute/chat", messages=[{"role": "user", "content": prompt}],
            max_tokens=40, extra_headers={"traceparent": TRACEPARENT})
    return answer.headers["x-taskroute-request-id"]


def tree(spans: list[Span]) -> tuple[Span, list[Span]]:
    """The request's span and its attempts (the chain's calls), in order."""
    (root,) = [s for s in spans if s.parent_id == CLIENT_SPAN]
    return root, children(spans, root)


async def test_a_judge_call_is_a_span_under_the_attempt_it_grades_with_its_verdict(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=judged_chat)
    request_id = await ask(gateway, "9 lives of a cat, and say hello")
    root, attempts = tree(await exported(tracing, receiver, CLIENT_TRACE, 4))
    (attempt,) = attempts
    assert "judge:pass" in attempt.attributes["taskroute.gate_verdicts"]
    spans = receiver.received.in_trace(CLIENT_TRACE)
    (judge,) = children(spans, attempt)
    assert judge.name == f"judge {JUDGE}" and judge.kind == 1  # INTERNAL
    j = judge.attributes
    assert j["taskroute.judge.verdict"] == "pass"
    assert j["taskroute.judge.confidence"] == pytest.approx(0.9)
    assert j["taskroute.gate"] == "judge" and j["taskroute.task_class"] == "judge"
    assert j["taskroute.request_id"] == request_id == root.attributes["taskroute.request_id"]
    assert j["gen_ai.request.model"] == j["taskroute.model"] == JUDGE
    assert j["gen_ai.response.model"] == JUDGE and j["taskroute.status"] == "ok"
    assert j["gen_ai.usage.input_tokens"] > 0 and j["gen_ai.usage.output_tokens"] > 0
    assert j["taskroute.attempts"] == 1 and judge.status_code == 0
    (call,) = children(spans, judge)
    assert call.name == f"chat {JUDGE_UPSTREAM}" and call.kind == 3  # CLIENT
    assert call.attributes["taskroute.deployment"] == JUDGE
    assert call.attributes["taskroute.attempt.status"] == "ok"
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert j["taskroute.cost_usd"] == call.attributes["taskroute.cost_usd"] > 0
    # the request's cost counts the judge's, which its own attempt span does not
    assert root.attributes["taskroute.cost_usd"] == pytest.approx(
        attempt.attributes["taskroute.cost_usd"] + j["taskroute.cost_usd"])
    sent = gateway.upstream.last_headers[JUDGE_UPSTREAM]["traceparent"]
    assert sent == f"00-{CLIENT_TRACE}-{call.span_id}-01"
    assert judge.start_ns >= attempt.end_ns  # graded once the answer was in
    text = repr([s.attributes for s in spans])  # content not logged: no question, no reason
    assert "lives of a cat" not in text and "gen_ai.input.messages" not in text
    assert "scored it" not in text


async def test_each_escalation_is_graded_by_a_judge_span_of_its_own(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=judged_chat)
    with pytest.raises(openai.APIStatusError):  # 4/10 from the judge on every model
        await ask(gateway, "4 plus 4, and say hello")
    root, attempts = tree(await exported(tracing, receiver, CLIENT_TRACE, 10))
    assert [a.attributes["taskroute.attempt.status"] for a in attempts] == ["rejected"] * 3
    spans = receiver.received.in_trace(CLIENT_TRACE)
    for attempt in attempts:
        (judge,) = children(spans, attempt)
        assert judge.name == f"judge {JUDGE}"
        assert judge.attributes["taskroute.judge.verdict"] == "fail"
        assert judge.attributes["taskroute.judge.confidence"] == pytest.approx(0.4)
        assert [c.name for c in children(spans, judge)] == [f"chat {JUDGE_UPSTREAM}"]
    assert root.attributes["taskroute.status"] == "error"


async def test_a_failing_judge_is_an_error_span_whose_verdict_lets_the_answer_pass(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=judged_chat)
    gateway.upstream.fail(JUDGE_UPSTREAM, 503)  # the judge's first call and its retry
    await ask(gateway, "9 lives of a cat, and say hello")
    root, (attempt,) = tree(await exported(tracing, receiver, CLIENT_TRACE, 5))
    spans = receiver.received.in_trace(CLIENT_TRACE)
    (judge,) = children(spans, attempt)
    assert judge.status_code == 2 and judge.attributes["taskroute.status"] == "error"
    assert judge.attributes["taskroute.judge.verdict"] == "pass"  # a broken judge blocks none
    assert "taskroute.judge.confidence" not in judge.attributes
    assert "UpstreamStatus" in judge.attributes["taskroute.error"]
    calls = children(spans, judge)
    assert [c.attributes["taskroute.attempt.role"] for c in calls] == ["first", "retry"]
    assert [c.status_code for c in calls] == [2, 2]
    assert root.attributes["taskroute.status"] == "ok"


def raced_chat(policy: Policy) -> Policy:
    """The chat task's cheap pick (Anthropic's: no logprobs) raced against gpt-4.1, its
    confidence the judge's when the estimate would let it win."""
    policy = judged_chat(policy)
    chat = dataclasses.replace(policy.tasks["chat"], gates=policy.tasks["chat"].gates[:-1],
                               race=RaceSpec("openai/gpt-4.1", 0.9, judge=JUDGE))
    tiers = tuple(dataclasses.replace(t, model="anthropic/claude-haiku-4-5")
                  if t.name == "fast" else t for t in policy.tiers)
    return dataclasses.replace(
        policy, tasks=MappingProxyType({**policy.tasks, "chat": chat}), tiers=tiers)


async def test_a_race_judge_is_a_span_under_the_cheap_side_it_grades(
    start_gateway: StartGateway, tracing: OtelTracing, receiver: OtlpReceiver,
) -> None:
    gateway = await start_gateway(tracing=tracing, edit_policy=raced_chat)
    gateway.upstream.answer_slowly("gpt-4.1", 0.5)  # the cheap side decides
    await ask(gateway, "[difficulty=0.1] 9 lives of a cat, and say hello")
    root, attempts = tree(await exported(tracing, receiver, CLIENT_TRACE, 5))
    sides = {a.attributes["taskroute.race.role"]: a for a in attempts}
    assert root.attributes["taskroute.race.winner"] == "cheap"
    spans = receiver.received.in_trace(CLIENT_TRACE)
    (judge,) = children(spans, sides["cheap"])
    assert children(spans, sides["strong"]) == []
    assert judge.name == f"judge {JUDGE}"
    assert judge.attributes["taskroute.judge.verdict"] == "pass"
    assert judge.attributes["taskroute.judge.confidence"] == pytest.approx(0.9)
    assert [c.name for c in children(spans, judge)] == [f"chat {JUDGE_UPSTREAM}"]
