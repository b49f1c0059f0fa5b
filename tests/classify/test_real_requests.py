"""Issue 15: real requests the classifier and the rules used to get wrong, and what an unsure
classifier still knows."""

from __future__ import annotations

import re

import pytest

from taskroute import ChatRequest, Router
from taskroute.classify import LinearTaskClassifier, Prediction
from taskroute.classify.rules import shared_tier
from taskroute.policy.loader import load_default_policy


@pytest.fixture(scope="module")
def clf() -> LinearTaskClassifier:
    return LinearTaskClassifier.bundled()


def _coding_pattern() -> re.Pattern[str]:
    policy = load_default_policy()
    patterns = [r.pattern for r in policy.classify_rules if r.task == "coding" and r.pattern]
    assert len(patterns) == 1
    return patterns[0]


def test_coding_rule_matches_code_not_prose() -> None:
    pattern = _coding_pattern()
    assert not pattern.search("Plan a history lesson across three class periods on the "
                              "French Revolution, with a function of each period.")
    assert not pattern.search("Please SELECT three students from the class list.")
    for code in ("def merge(a, b):", "class Parser(Base):", "function add(a, b) {",
                 "SELECT name FROM users WHERE id = 3"):
        assert pattern.search(code), code


@pytest.mark.parametrize(("text", "task"), [
    ("Develop a Python program that reads all the text files in a folder, counts the lines "
     "of each and writes a report of the ten longest files.", "coding"),
    ("I face east, turn left twice, then right once. Which way am I facing now?",
     "reasoning"),
    ("Given this paragraph about the Harlow Bridge, when was it opened?\n\nThe Harlow "
     "Bridge is a suspension bridge over the river Tamsin. It was designed by Ellen Roy and "
     "opened in 1931 after four years of work. It carries two lanes of traffic and a "
     "footpath, and was repainted in 2012 at a cost of two million pounds. It is the "
     "longest bridge in the county.", "retrieval_qa"),
    ("Which of these are birds and which are fish: sparrow, trout, heron, cod, owl",
     "classification"),
    ("Why do people keep houseplants?", "qa"),
    ("Write a short poem about a fox in the snow.", "writing"),
    ("Can you help me write a toast for my brother's wedding? He loves sailing.", "writing"),
    ("Give me five name ideas for a bakery.", "chat"),
])
def test_real_requests_are_read_right(clf: LinearTaskClassifier, text: str,
                                      task: str) -> None:
    assert clf.predict(text).task == task


def test_prediction_carries_the_runners_up(clf: LinearTaskClassifier) -> None:
    p = clf.predict("Summarize this article in two sentences: the council voted to build "
                    "a new library near the station.")
    assert p.ranked[0] == (p.task, p.probability)
    assert [q for _, q in p.ranked] == sorted((q for _, q in p.ranked), reverse=True)
    assert len(p.ranked) > 1


def test_unsure_classifier_uses_the_tier_its_top_classes_share() -> None:
    policy = load_default_policy()
    # extraction and summarization are both served by the fast tier in the default policy
    assert policy.tasks["extraction"].tier == policy.tasks["summarization"].tier == "fast"
    split = Prediction("extraction", 0.3, (("extraction", 0.3), ("summarization", 0.25),
                                           ("coding", 0.2)))
    assert shared_tier(policy, split, 0.45) == ("extraction", "fast", 0.55,
                                                ["extraction", "summarization"])
    mixed = Prediction("extraction", 0.3, (("extraction", 0.3), ("coding", 0.25)))
    assert shared_tier(policy, mixed, 0.45) is None  # fast and balanced: nothing shared
    assert shared_tier(policy, Prediction("qa", 0.3, ()), 0.45) is None


class _Unsure:
    def predict(self, text: str) -> Prediction:
        return Prediction("reasoning", 0.3, (("reasoning", 0.3), ("high_stakes", 0.3),
                                             ("qa", 0.1)))


def test_router_routes_an_unsure_guess_to_the_shared_tier() -> None:
    router = Router(load_default_policy(), classifier=_Unsure())
    decision = router.decide(ChatRequest.from_prompt("hmm, think about this one"))
    assert decision.task == "reasoning"   # not `when unsure: chat`
    assert decision.task_source == "classifier"
    assert any("strong tier" in r for r in decision.reasons)


def test_writing_goes_to_the_tier_the_default_policy_keeps_for_it() -> None:
    """A poem is `writing`, which the default policy sends to the balanced tier, where chat
    stays on the fast one."""
    router = Router(load_default_policy())
    poem = router.decide(ChatRequest.from_prompt("Write a short poem about a fox in the snow."))
    hello = router.decide(ChatRequest.from_prompt("hey, how was your weekend?"))
    assert (poem.task, poem.tier) == ("writing", "balanced")
    assert (hello.task, hello.tier) == ("chat", "fast")
