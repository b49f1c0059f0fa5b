from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from taskroute.classify.base import Prediction
from taskroute.exceptions import InvalidRequest, UnknownModel, UnknownTask
from taskroute.policy import parse_policy
from taskroute.quality.budgets import SpendTracker
from taskroute.router import Router

POLICY = """\
name: test
user tiers: [free, pro, enterprise]
models:
  openai/small: {tier: fast, price: {input: 0.1, output: 0.4}, context: 1000}
  openai/mid: {tier: balanced, price: {input: 1, output: 4}}
  openai/big: {tier: strong, price: {input: 5, output: 20}}
tiers:
  fast: {use: openai/small, escalate to: [balanced, strong]}
  balanced: {use: openai/mid, escalate to: [strong]}
  strong: {use: openai/big}
tasks:
  chat: fast
  extraction: fast
  summarization: fast
  coding: balanced
  reasoning: strong
  high_stakes: balanced
  tool_use: balanced
when unsure: chat
classifier: {min confidence: 0.6}
classify:
  - as: tool_use
    when: tools_required
  - as: summarization
    keywords: [summarize, tl;dr]
  - as: coding
    pattern: '\\bdef \\w+\\('
  - as: high_stakes
    system says: [legal advice]
adjust:
  - when: format is strict_schema and input_tokens > 200
    at least: balanced
    because: long strict schemas break small models
  - when: user_tier is enterprise and task is high_stakes
    use: strong
  - when: session_escalations >= 2
    move up: 1
  - when: task is reasoning and complexity < 0.1
    move down: 2
"""


@dataclass
class FixedClassifier:
    """A classifier that always answers the same, to test how the router uses its answer."""

    task: str
    probability: float
    calls: int = 0

    def predict(self, text: str) -> Prediction:
        self.calls += 1
        return Prediction(self.task, self.probability)


def make_router(classifier: Any = None) -> Router:
    return Router(parse_policy(POLICY, file="test.yaml"), classifier=classifier)


def chat(content: str, **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **fields}


def test_caller_named_task_beats_rules_and_classifier() -> None:
    classifier = FixedClassifier("coding", 0.99)
    router = make_router(classifier)
    decision = router.decide(chat("summarize this", metadata={"task": "extraction"}))
    assert (decision.task, decision.task_source) == ("extraction", "caller")
    assert "metadata.task" in decision.reasons[0]
    assert classifier.calls == 0


def test_the_three_ways_a_caller_names_the_task_in_order() -> None:
    router = make_router()
    body = chat("hi", model="taskroute/coding", metadata={"task": "extraction"})
    assert router.decide(body, task="reasoning").task == "extraction"   # metadata first
    body = chat("hi", model="taskroute/coding")
    assert router.decide(body, task="reasoning").task == "reasoning"    # then the header
    decision = router.decide(body)                                      # then the model name
    assert decision.task == "coding" and "model name" in decision.reasons[0]


def test_unknown_task_named_by_caller_is_refused() -> None:
    with pytest.raises(UnknownTask, match="poetry"):
        make_router().decide(chat("hi"), task="poetry")
    with pytest.raises(UnknownTask):
        make_router().decide(chat("hi", model="taskroute/poetry"))


def test_rules_match_in_file_order_before_the_classifier() -> None:
    classifier = FixedClassifier("chat", 0.99)
    router = make_router(classifier)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    # Matches both the tool rule (line of rule 1) and the keyword rule: the first wins.
    decision = router.decide(chat("summarize my calendar", tools=tools))
    assert (decision.task, decision.task_source) == ("tool_use", "rule")
    assert "line 22" in decision.reasons[0]
    assert router.decide(chat("TL;DR of this thread please")).task == "summarization"
    assert router.decide(chat("fix def parse(x): return x")).task == "coding"
    high = {"messages": [{"role": "system", "content": "You give legal advice."},
                         {"role": "user", "content": "Can I break my lease?"}]}
    assert router.decide(high).task == "high_stakes"
    assert classifier.calls == 0


def test_classifier_decides_when_confident_and_falls_to_default_when_not() -> None:
    sure = make_router(FixedClassifier("reasoning", 0.8)).decide(chat("plan my trip " * 30))
    assert (sure.task, sure.task_source, sure.task_confidence) == (
        "reasoning", "classifier", 0.8,
    )
    unsure = make_router(FixedClassifier("reasoning", 0.4)).decide(chat("plan my trip"))
    assert (unsure.task, unsure.task_source) == ("chat", "default")
    assert "unsure" in unsure.reasons[0] and "40%" in unsure.reasons[0]


def test_classifier_guess_outside_the_policy_falls_to_default() -> None:
    decision = make_router(FixedClassifier("qa", 0.95)).decide(chat("who wrote Hamlet"))
    assert decision.task == "chat"
    assert "not a class of this policy" in decision.reasons[0]


def test_without_classifier_unmatched_requests_take_the_default_class() -> None:
    decision = make_router(None).decide(chat("hello there"))
    assert (decision.task, decision.task_source, decision.tier) == ("chat", "default", "fast")


def test_strict_schema_and_long_input_raise_the_tier() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "strict": True, "schema": {}}}
    router = make_router()
    short = router.decide(chat("extract the name", metadata={"task": "extraction"},
                               response_format=fmt))
    long = router.decide(chat("extract the name " + "x" * 1200,
                              metadata={"task": "extraction"}, response_format=fmt))
    assert short.tier == "fast"
    assert (long.tier, long.model) == ("balanced", "openai/mid")
    assert any("Raised from fast to balanced" in r and "long strict schemas" in r
               for r in long.reasons)


def test_user_tier_and_task_pick_the_strong_tier() -> None:
    router = make_router()
    meta = {"task": "high_stakes", "user_tier": "enterprise"}
    assert router.decide(chat("draft the notice", metadata=meta)).tier == "strong"
    meta = {"task": "high_stakes", "user_tier": "pro"}
    assert router.decide(chat("draft the notice", metadata=meta)).tier == "balanced"


def test_session_fallback_history_moves_up() -> None:
    router = make_router()
    body = chat("hello", metadata={"session_id": "s1"})
    assert router.decide(body).tier == "fast"
    router.record_escalation("s1")
    router.record_escalation("s1")
    decision = router.decide(body)
    assert decision.tier == "balanced"
    assert decision.signals.session_escalations == 2
    assert router.decide(chat("hello", metadata={"session_id": "s2"})).tier == "fast"


def test_move_down_is_clamped_at_the_cheapest_tier() -> None:
    decision = make_router().decide(chat("hi", metadata={"task": "reasoning"}))
    assert decision.tier == "fast"
    assert any("Lowered from strong to fast" in r for r in decision.reasons)


def test_chain_skips_models_whose_context_is_too_small() -> None:
    decision = make_router().decide(chat("y" * 8000))
    assert decision.chain == ("openai/mid", "openai/big")
    assert any("context window" in r for r in decision.reasons)


def test_a_model_whose_window_cannot_hold_input_plus_output_budget_is_skipped() -> None:
    router = make_router()
    prompt = "y" * 2400  # about 600 input tokens: openai/small's 1,000 hold them alone
    assert router.decide(chat(prompt, max_tokens=300)).chain[0] == "openai/small"
    decision = router.decide(chat(prompt, max_tokens=500))
    assert decision.chain[0] == "openai/mid"
    assert any("Skipped openai/small" in r and "500 output tokens" in r
               for r in decision.reasons)


def test_a_named_model_too_small_for_the_request_is_refused_clearly() -> None:
    from taskroute.exceptions import ContextWindowExceeded

    with pytest.raises(ContextWindowExceeded, match="context window"):
        make_router().decide(chat("y" * 2400, model="openai/small", max_tokens=500))


ALIASES = "aliases: {gpt-4o: openai/mid, claude-3-5-sonnet: openai/big}\n"


def test_an_alias_serves_the_model_it_names() -> None:
    router = Router(parse_policy(POLICY + ALIASES), classifier=False)
    decision = router.decide(chat("hi", model="gpt-4o"))
    assert (decision.model, decision.routed) == ("openai/mid", False)
    assert any("gpt-4o, an alias" in r for r in decision.reasons)
    with pytest.raises(UnknownModel, match="claude-3-5-sonnet"):
        router.decide(chat("hi", model="gpt-5o"))  # the error lists the aliases too


def test_named_models_routed_routes_by_task_class_anyway() -> None:
    policy = parse_policy(POLICY + ALIASES + "named models: routed\n")
    router = Router(policy, classifier=False)
    for name in ("gpt-4o", "openai/big", "big"):
        decision = router.decide(chat("hi", model=name))
        assert (decision.model, decision.routed) == ("openai/small", True)
        assert any("routes a named model by its task class" in r for r in decision.reasons)
    with pytest.raises(UnknownModel):
        router.decide(chat("hi", model="gpt-17"))


@pytest.mark.parametrize(("text", "problem"), [
    ("aliases: {gpt-4o: openai/nope}\n", "unknown model 'openai/nope'"),
    ("aliases: {openai/mid: openai/big}\n", "already a model id"),
    ("named models: sometimes\n", "as named"),
])
def test_bad_aliases_are_refused_at_load_time(text: str, problem: str) -> None:
    from taskroute.exceptions import PolicyError

    with pytest.raises(PolicyError, match=problem):
        parse_policy(POLICY + text)


def test_concrete_model_bypasses_routing() -> None:
    router = make_router()
    for name in ("openai/big", "big"):
        decision = router.decide(chat("hi", model=name))
        assert (decision.model, decision.chain, decision.routed) == (
            "openai/big", ("openai/big",), False,
        )
    with pytest.raises(UnknownModel):
        router.decide(chat("hi", model="gpt-17"))


def test_decision_is_deterministic_and_explains_itself() -> None:
    router = make_router(FixedClassifier("coding", 0.9))
    body = chat("please write a function that reverses a list", max_tokens=100)
    first, second = router.decide(body), router.decide(body)
    assert first == second
    text = first.explain()
    assert text.startswith("Routed as coding to the balanced tier: openai/mid.")
    assert "openai/big" in text and "Estimated cost" in text
    # cost: input tokens at the mid price plus min(typical 800, max_tokens 100) output tokens
    expected = (first.signals.input_tokens * 1 + 100 * 4) / 1_000_000
    assert first.estimated_cost_usd == pytest.approx(expected)
    assert first.to_dict()["chain"] == ["openai/mid", "openai/big"]


def test_bad_request_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        make_router().decide({"messages": []})


def test_default_router_uses_the_bundled_policy() -> None:
    router = Router.default(classifier=False)
    decision = router.decide(chat("Summarize this article for me: ..."))
    assert (decision.task, decision.model) == ("summarization", "openai/gpt-4.1-mini")


LABELS = POLICY.replace(
    "  fast: {use: openai/small, escalate to: [balanced, strong]}\n",
    "  fast: {use: openai/small, escalate to: [balanced, strong], label: Quick answer}\n").replace(
    "  balanced: {use: openai/mid, escalate to: [strong]}\n",
    "  balanced: {use: openai/mid, escalate to: [strong], label: Thinking it through}\n").replace(
    "  coding: balanced\n", "  coding: {tier: balanced, label: Writing code}\n")


def test_the_decision_carries_the_label_of_where_it_ends_up() -> None:
    spend = SpendTracker()
    router = Router(parse_policy(LABELS + "budgets: {per user: 1, step down below: 50%}\n"),
                    classifier=False, spend=spend)
    assert router.decide(chat("hello")).label == "Quick answer"
    assert router.decide(chat("hi", metadata={"task": "coding"})).label == "Writing code"
    meta = {"task": "high_stakes", "user_tier": "enterprise"}  # moved up to strong: no label
    assert router.decide(chat("draft the notice", metadata=meta)).label is None
    meta = {"task": "high_stakes", "user_tier": "pro"}
    decision = router.decide(chat("draft the notice", metadata=meta))
    assert decision.label == "Thinking it through"
    assert "Users see: Thinking it through." in decision.explain()
    assert decision.to_dict()["label"] == "Thinking it through"
    spend.add(0.6, user="ann", key=None)  # under half of ann's budget left: a step down
    low = router.decide(chat("draft the notice", user="ann", metadata=meta))
    assert low.tier == "fast" and low.label == "Quick answer"
    assert make_router().decide(chat("hello")).label is None  # a policy without labels


def test_warm_reads_a_lazy_classifier_s_weights_before_the_first_request() -> None:
    from taskroute.classify.learned import LinearTaskClassifier, _load_bundled

    lazy = LinearTaskClassifier._lazy(_load_bundled, "bundled, not yet read")  # not the cached one
    assert lazy._weights is None          # read on the first prediction, unless warmed
    make_router(classifier=lazy).warm()
    assert lazy._weights is not None
