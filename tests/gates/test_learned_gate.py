"""Issue 15: the learned escalation gate — its answer features, its plain-file model, the
gate in a policy and the race's confidence, and the cascade it judges."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from taskroute.evaluate.datasets import Dataset, Outcome, Record
from taskroute.evaluate.escalation import (
    LearnedCascadeStrategy,
    PreRoutedCascadeStrategy,
    train_gate,
)
from taskroute.evaluate.strategies import make_strategy
from taskroute.exceptions import DataError
from taskroute.gates.base import GateEnv
from taskroute.gates.confidence import assess
from taskroute.gates.registry import GateRegistry
from taskroute.learned.answer import answer_features, final_choice, unwrap
from taskroute.learned.escalation import EscalationModel
from taskroute.policy.loader import load_default_policy
from taskroute.policy.model import GateSpec
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, Choice, ResponseMessage

MC = ("Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nC) helium\nD) neon\n"
      'Print only a single choice from "A" or "B" or "C" or "D" without explanation.\nAnswer:')
CODE = ("Write a function to add two numbers.\nYour code should pass these tests:\n"
        "assert add_two(1, 2) == 3")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routerbench-3"


def test_choice_features_read_the_letter_offered() -> None:
    assert final_choice("B", ["A", "B", "C", "D"]) == ("B", 1)
    assert final_choice("The answer is (C).", ["A", "B", "C", "D"])[0] == "C"
    assert final_choice("A) or B) could both be right", ["A", "B", "C", "D"]) == ("A", 2)
    assert answer_features(MC, "A) or B) could both be right")["choice_many"] == 1.0
    plain = answer_features(MC, "B", model="m")
    assert plain["choice_given"] == plain["choice_bare"] == 1.0
    rambling = answer_features(MC, "Well, plants are interesting. " * 5)
    assert rambling["choice_given"] == 0.0 and rambling["single_but_long"] == 1.0
    agree = answer_features(MC, "B", model="m", previous=["B"])
    disagree = answer_features(MC, "B", model="m", previous=["A"])
    assert agree["agrees_previous"] == 1.0 and disagree["disagrees_previous"] == 1.0


def test_code_features_parse_and_find_the_function_asked_for() -> None:
    good = answer_features(CODE, "```python\ndef add_two(a, b):\n    return a + b\n```")
    assert good["code_parses"] == good["code_defines_asked"] == good["code_arity_match"] == 1
    wrong_name = answer_features(CODE, "```python\ndef plus(a, b):\n    return a + b\n```")
    assert wrong_name["code_defines_asked"] == 0.0
    broken = answer_features(CODE, "```python\ndef add_two(a, b)\n    return a +\n```")
    assert broken["code_parses"] == 0.0
    other = answer_features(CODE, "```javascript\nfunction add_two(a, b) { return a + b }\n```")
    assert other["code_other_language"] == 1.0


def test_unwrap_reads_routerbench_list_literals() -> None:
    assert unwrap("['first', 'second']") == "first\nsecond"
    assert unwrap("['not closed") == "['not closed"


def _data(n: int = 60) -> Dataset:
    records = []
    for i in range(n):
        right = i % 3 != 0
        records.append(Record(str(i), MC, {
            "cheap": Outcome(float(right), cost=0.001,
                             response="B" if right else "I think it might be A or C."),
            "dear": Outcome(1.0, cost=0.01, response="B"),
        }, task="mc"))
    return Dataset.from_records(records)


def test_trained_gate_round_trips_as_json_and_refuses_pickle(tmp_path: Path) -> None:
    gate = train_gate(_data())
    good = gate.probability(MC, "B", model="cheap")
    bad = gate.probability(MC, "I think it might be A or C.", model="cheap")
    assert good > 0.5 > bad
    path = tmp_path / "gate.json"
    gate.save(path)
    assert json.loads(path.read_text())["format"] == "taskroute.escalation_gate"
    assert EscalationModel.from_file(path).probability(MC, "B", model="cheap") == good
    pickled = tmp_path / "gate.pkl"
    pickled.write_bytes(pickle.dumps({"weights": {}}))
    with pytest.raises(DataError, match="pickle"):
        EscalationModel.from_file(pickled)


def _answer(text: str) -> ChatResponse:
    return ChatResponse(model="cheap", choices=[Choice(message=ResponseMessage(content=text),
                                                       finish_reason="stop")])


def test_learned_gate_judges_and_reports_its_confidence_to_the_race(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    train_gate(_data()).save(path)
    registry = GateRegistry()
    assert "learned" in registry.names
    gate = registry.build(GateSpec("learned", {"model_file": str(path),
                                               "min_confidence": 0.5}),
                          GateEnv(policy=load_default_policy()), where="task qa")
    request = ChatRequest.from_prompt(MC)
    ok = gate.check(_answer("B"), request)
    no = gate.check(_answer("I think it might be A or C."), request)
    assert not isinstance(ok, type(None)) and not isinstance(no, type(None))
    assert ok.passed and not no.passed  # type: ignore[union-attr]
    sure = assess([ok], _answer("B"), "qa")  # type: ignore[list-item]
    assert sure.source == "gate:learned" and sure.value == ok.confidence  # type: ignore[union-attr]
    with pytest.raises(Exception, match="model file"):
        registry.build(GateSpec("learned", {}), GateEnv(policy=load_default_policy()),
                       where="task qa")


def test_learned_cascade_escalates_what_the_gate_rejects() -> None:
    from taskroute.evaluate.base import model_costs

    data = _data(90)
    cascade = LearnedCascadeStrategy()
    cascade.fit(data)
    points = cascade.points(data, model_costs(data))
    best = max(points, key=lambda p: p[2]["quality"])[2]
    assert best["quality"] == 1.0 and best["cost"] < 0.01  # escalates only the doubtful third
    assert 0.2 < best["escalation-rate"] < 0.5


def test_pre_routed_cascade_escalates_the_pre_routers_pick_when_the_gate_rejects_it() -> None:
    from taskroute.evaluate.base import model_costs

    data = _data(90)
    strategy = make_strategy("learned+gate")
    assert isinstance(strategy, PreRoutedCascadeStrategy) and strategy.fold_router is not None
    strategy.fit(data)
    points = strategy.points(data, model_costs(data))
    # λ = 0: the pre-router's pick is the model it predicts best, nothing to escalate to.
    assert points[0][2]["quality"] == 1.0 and points[0][2]["escalation-rate"] == 0.0
    cheap = [f for _, _, f in points if f["quality"] == 1.0 and f["cost"] < 0.009]
    assert cheap, "no λ starts at the cheap model and escalates only what the gate rejects"
    assert all(0.2 < f["escalation-rate"] < 0.5 for f in cheap)
    assert min(f["cost"] for _, _, f in points) == pytest.approx(0.001)  # cheap, never escalated


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")
def test_learned_cascade_beats_the_zero_router_on_mbpp() -> None:
    from taskroute.evaluate.loading import open_dataset
    from taskroute.evaluate.replay import evaluate

    train = open_dataset(f"routerbench:{SHARED / 'mbpp_train.csv'}")
    test = open_dataset(f"routerbench:{SHARED / 'mbpp_test.csv'}")
    [result] = evaluate([LearnedCascadeStrategy()], train, test=test)
    assert result.figures["AIQ"] > 0.683  # the zero-router's, from the data's README
