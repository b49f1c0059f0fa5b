"""Escalation along the chain against the stand-in upstream: failing gates and failing calls
move the request up, and every attempt is recorded and paid for."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from taskroute.exceptions import ChainExhausted, UnknownTask
from taskroute.policy.model import GateSpec
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse
from taskroute.router import Router

from .support import (
    MemoryStore,
    RouterFactory,
    ask,
    assert_all_recorded,
    make_policy,
)

SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string", "pattern": "^large answers"}},
    "required": ["summary"],
}


def statuses(result_or_record: object) -> list[tuple[str, str, str]]:
    record = getattr(result_or_record, "record", result_or_record)
    return [(a.deployment, a.role, a.status) for a in record.attempts]  # type: ignore[attr-defined]


async def test_answers_from_the_first_pick_when_its_gates_pass(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    result = await make_router().complete(ask(), task="chat")
    assert result.response.text.startswith("small answers")
    assert statuses(result) == [("sim/small", "first", "ok")]
    assert not result.record.escalated and result.record.answered_by == "sim/small"
    assert_all_recorded(result.record, upstream)


async def test_escalates_when_valid_json_gate_rejects(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.return_invalid_json("small")
    result = await make_router().complete(
        ask(response_format={"type": "json_object"}), task="extraction"
    )
    assert statuses(result) == [("sim/small", "first", "rejected"),
                                ("sim/medium", "escalation", "ok")]
    rejected = result.record.attempts[0]
    assert any(v.gate == "valid_json_if_asked" and not v.passed for v in rejected.verdicts)
    assert rejected.cost_usd > 0
    assert result.record.total_cost_usd == pytest.approx(
        sum(a.cost_usd for a in result.record.attempts))
    assert result.record.escalated
    assert_all_recorded(result.record, upstream)


async def test_escalates_when_schema_gate_rejects(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}}
    result = await make_router().complete(ask(response_format=fmt), task="extraction")
    assert [s for _, _, s in statuses(result)] == ["rejected", "rejected", "ok"]
    assert result.record.answered_by == "sim/large"
    reason = next(v.reason for v in result.record.attempts[0].verdicts if v.gate == "schema")
    assert "pattern" in reason or "does not match" in reason
    assert_all_recorded(result.record, upstream)


@pytest.mark.parametrize("misbehave", ["truncate", "refuse"])
async def test_escalates_on_truncation_and_refusal(
    make_router: RouterFactory, upstream: SimulatedUpstream, misbehave: str
) -> None:
    getattr(upstream, misbehave)("small")
    result = await make_router().complete(ask("please write a few words on tea"), task="chat")
    gate = {"truncate": "not_truncated", "refuse": "refusal"}[misbehave]
    first = result.record.attempts[0]
    assert first.status == "rejected"
    assert [v.gate for v in first.verdicts if not v.passed] == [gate]
    assert result.record.answered_by == "sim/medium"
    assert_all_recorded(result.record, upstream)


async def test_a_cut_well_below_the_callers_max_tokens_escalates(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    """The stand-in stops at half its answer with `length` although the caller allowed far
    more: the upstream's cut, not the caller's, so the next model answers."""
    upstream.truncate("small")
    result = await make_router().complete(
        ask("please write a few words on tea", max_tokens=200), task="chat")
    first = result.record.attempts[0]
    assert first.status == "rejected" and 0 < first.output_tokens < 200
    assert [v.gate for v in first.verdicts if not v.passed] == ["not_truncated"]
    assert result.record.answered_by == "sim/medium"
    assert result.response.finish_reason == "stop"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408, 400, 401, 404])
async def test_escalates_on_each_error_status(
    make_router: RouterFactory, upstream: SimulatedUpstream, status: int
) -> None:
    upstream.fail("small", status)
    upstream.fail("small-b", status)
    result = await make_router(retries=1).complete(ask(), task="chat")
    assert result.record.answered_by == "sim/medium"
    retried = status >= 500 or status in (408, 429)
    expected = [("sim/small", "first", "error")]
    expected += [("sim/small", "retry", "error")] if retried else []
    expected += [("alt/small-b", "failover", "error")]
    expected += [("alt/small-b", "retry", "error")] if retried else []
    expected += [("sim/medium", "escalation", "ok")]
    assert statuses(result) == expected
    assert str(status) in (result.record.attempts[0].error or "")
    assert_all_recorded(result.record, upstream)


async def test_chain_exhausted_carries_every_attempt(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    store = MemoryStore()
    router = make_router(retries=0, store=store)
    for model in ("small", "small-b", "medium"):
        upstream.fail(model, 503)
    upstream.refuse("large")
    with pytest.raises(ChainExhausted) as caught:
        await router.complete(ask(), task="chat", request_id="req-1")
    attempts = caught.value.attempts
    assert [a.status for a in attempts] == ["error", "error", "error", "rejected"]
    assert "sim/large rejected by refusal" in str(caught.value)
    (entry,) = store.entries
    assert entry.record.request_id == "req-1" and entry.record.status == "error"
    assert entry.http_status == 502 and entry.record.attempts == attempts
    assert entry.record.total_cost_usd > 0
    assert_all_recorded(entry.record, upstream)


async def test_every_request_is_logged_and_content_only_when_the_policy_says(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    store = MemoryStore()
    router = make_router(store=store)
    await router.complete(ask("secret prompt"), task="chat")
    with pytest.raises(UnknownTask):
        await router.complete(ask(), task="nope")  # not routed: nothing to log
    (entry,) = store.entries
    assert entry.prompt is None and entry.answer is None and entry.api == "library"


async def test_escalations_are_noted_in_the_session_history(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    router = make_router()
    upstream.refuse("small")
    request = ask(metadata={"session_id": "s1"})
    await router.complete(request, task="chat")
    await router.complete(request, task="chat")
    assert router.history.escalations("s1", 60) == 2


async def test_anthropic_deployment_answers_through_the_same_path(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    result = await make_router().complete(ask(model="ant/claude-sim"))
    assert result.record.answered_by == "ant/claude-sim" and result.response.text
    assert result.record.attempts[0].input_tokens > 0


def test_complete_sync_runs_without_an_event_loop() -> None:
    with SimulatedUpstream() as threaded:  # served from its own thread
        router = Router(make_policy(threaded), classifier=False)
        first = router.complete_sync(ask(), task="chat")
        second = router.complete_sync(ask("again"), task="chat")
        router.close()
    assert first.response.text.startswith("small answers")
    assert second.record.answered_by == "sim/small"


async def test_judge_gate_calls_its_model_and_its_cost_counts(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    # The simulated judge echoes the start of the grading prompt, so the question's leading
    # number becomes its score: 9 passes (min score 7), 4 is rejected all the way up.
    router = make_router()
    passed = await router.complete(ask("9 lives of a cat"), task="qa")
    (attempt,) = passed.record.attempts
    (judge,) = [v for v in attempt.verdicts if v.gate == "judge"]
    assert judge.passed and judge.confidence == 0.9 and judge.cost_usd > 0
    assert passed.record.total_cost_usd == pytest.approx(attempt.cost_usd + judge.cost_usd)
    assert upstream.requests["large"] == 1  # the judge's call
    with pytest.raises(ChainExhausted, match="judge"):
        await router.complete(ask("4 plus 4"), task="qa")


async def test_a_users_own_gate_escalates_like_a_built_in(upstream: SimulatedUpstream) -> None:
    class OnlyLarge:
        name = "only_large"

        def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
            return GateVerdict(self.name, answer.text.startswith("large"), "not large")

    policy = make_policy(upstream)
    chat = dataclasses.replace(policy.tasks["chat"], gates=(GateSpec("only_large"),))
    policy = dataclasses.replace(policy, tasks=MappingProxyType({**policy.tasks, "chat": chat}))
    router = Router(policy, classifier=False, gates={"only_large": OnlyLarge()})
    try:
        result = await router.complete(ask(), task="chat")
    finally:
        await router.aclose()
    assert [a.status for a in result.record.attempts] == ["rejected", "rejected", "ok"]
    assert result.record.answered_by == "sim/large"
