"""The policy's rules and the cascade as strategies, replayed over small hand-made outcome sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taskroute.cli.main import main
from taskroute.evaluate.cascade import CascadeStrategy, cascade_figures, gate_judge, run_cascade
from taskroute.evaluate.datasets import Dataset, Outcome, Record
from taskroute.evaluate.replay import evaluate
from taskroute.evaluate.rule import RuleStrategy, tier_models
from taskroute.evaluate.strategies import make_strategy
from taskroute.exceptions import CallerError, DataError

EXTRACT = "Extract the invoice date from: Invoice 42, issued 2024-03-01"
PROVE = ("Prove step by step that the sum of the first n odd numbers is n squared, "
         "then analyse the edge cases")


def _rec(i: int, text: str, **outcomes: Outcome) -> Record:
    return Record(f"r{i}", text, outcomes)


def test_rule_strategy_maps_tiers_to_price_levels() -> None:
    data = Dataset.from_records([
        _rec(0, EXTRACT, cheap=Outcome(1.0, cost=0.001), dear=Outcome(1.0, cost=0.01)),
        _rec(1, PROVE, cheap=Outcome(0.0, cost=0.001), dear=Outcome(1.0, cost=0.01)),
    ])
    strategy = RuleStrategy()
    strategy.fit(data)
    pred = strategy.predict(data)
    cheap, dear = data.models.index("cheap"), data.models.index("dear")
    assert pred[0].argmax() == cheap  # extraction → fast tier → the cheaper price level
    assert pred[1].argmax() == dear   # reasoning → strong tier → the dearer one
    assert pred.max(axis=1).tolist() == pytest.approx([1.0, 1.0], abs=1e-2)
    # within a pick, the dearer model leans up by the request's complexity: ties broken
    assert pred[1, dear] > 1.0 and pred[0, dear] > 0.0 and pred[0, cheap] == 1.0


def test_rule_strategy_uses_policy_model_ids_when_the_data_has_them() -> None:
    # dataset models named as the default policy names them: matched by id, not by price
    fast, strong = "openai/gpt-4.1-mini", "anthropic/claude-opus-4-5"
    data = Dataset.from_records([
        _rec(0, EXTRACT, **{fast: Outcome(1.0, cost=0.5), strong: Outcome(1.0, cost=0.1)}),
        _rec(1, PROVE, **{fast: Outcome(0.0, cost=0.5), strong: Outcome(1.0, cost=0.1)}),
    ])
    strategy = make_strategy("rule")
    assert isinstance(strategy, RuleStrategy)
    strategy.fit(data)
    pred = strategy.predict(data)
    assert data.models[int(pred[0].argmax())] == fast
    assert data.models[int(pred[1].argmax())] == strong


def test_tier_models_split_price_levels_and_take_the_best_at_each() -> None:
    costs = np.array([1.0, 2.0, 2.0, 5.0, 5.0])
    quality = np.array([0.3, 0.4, 0.6, 0.9, 0.7])
    assert tier_models(3, costs, quality) == [0, 2, 3]
    assert tier_models(3, np.array([1.0, 9.0]), np.array([0.5, 0.8])) == [0, 0, 1]


def _cascade_data() -> Dataset:
    return Dataset.from_records([
        # cheap answers well: one call
        _rec(0, "q0", a=Outcome(1.0, cost=1.0, response="Paris."),
             b=Outcome(1.0, cost=10.0, response="Paris.")),
        # cheap refuses: escalate, both calls paid
        _rec(1, "q1", a=Outcome(0.0, cost=1.0, response="I'm sorry, but I can't help with that."),
             b=Outcome(1.0, cost=10.0, response="Here it is.")),
        # cheap answers empty: escalate; the last model is kept whatever it says
        _rec(2, "q2", a=Outcome(0.0, cost=1.0, response="   "),
             b=Outcome(0.0, cost=10.0, response="")),
        # cheap answers wrongly but plausibly: the gates cannot tell, it is kept
        _rec(3, "q3", a=Outcome(0.0, cost=1.0, response="42"),
             b=Outcome(1.0, cost=10.0, response="41")),
    ])


def test_cascade_counts_every_call() -> None:
    data = _cascade_data()
    result = run_cascade(data, np.array([1.0, 10.0]), gate_judge())
    assert result.chosen.tolist() == [0, 1, 1, 0]
    assert result.calls.tolist() == [1, 2, 2, 1]
    assert result.cost.tolist() == [1.0, 11.0, 11.0, 1.0]
    figures = cascade_figures(result, data.scores())
    assert figures["quality"] == pytest.approx(0.5)
    assert figures["escalation-rate"] == pytest.approx(0.5)
    assert figures["calls-per-request"] == pytest.approx(1.5)
    assert figures["cost-per-completed"] == pytest.approx(24.0 / 2)


def test_cascade_chain_and_gates_are_chosen() -> None:
    data = _cascade_data()
    # strongest first: its non-empty answers pass, so it rarely escalates down
    result = CascadeStrategy(("b", "a")).run(data, np.array([1.0, 10.0]))
    assert result.chosen.tolist() == [1, 1, 0, 1]
    # with only the non_empty gate the refusal is accepted
    lenient = run_cascade(data, np.array([1.0, 10.0]), gate_judge(["non_empty"]))
    assert lenient.chosen.tolist() == [0, 0, 1, 0]
    with pytest.raises(CallerError, match="unknown gate 'nope'"):
        gate_judge(["nope"])


def test_cascade_needs_responses() -> None:
    data = Dataset.from_records([_rec(0, "q", a=Outcome(1.0, cost=1.0), b=Outcome(1.0))])
    with pytest.raises(DataError) as err:
        run_cascade(data, np.array([1.0, 2.0]), gate_judge())
    assert "outcomes.a.response" in str(err.value)


def test_evaluate_scores_cascade_and_rule_next_to_the_others() -> None:
    data = _cascade_data()
    results = {r.name: r for r in evaluate([make_strategy("cascade"), make_strategy("oracle")],
                                           data, test=data)}
    cascade = results["cascade"].figures
    assert cascade["cost"] == pytest.approx(6.0)
    assert cascade["calls-per-request"] == pytest.approx(1.5)
    assert len(results["cascade"].curve) == 1


def test_eval_cli_runs_rule_and_cascade(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        ) -> None:
    path = tmp_path / "o.jsonl"
    lines = []
    for i in range(12):
        hard = i % 2 == 0
        text = PROVE + f" ({i})" if hard else EXTRACT + f" ({i})"
        lines.append(json.dumps({"id": str(i), "text": text, "outcomes": {
            "small": {"score": 0.0 if hard else 1.0, "cost": 0.001,
                      "response": "I'm not sure." if hard else "2024-03-01"},
            "large": {"score": 1.0, "cost": 0.01, "response": "Done."}}}))
    path.write_text("\n".join(lines) + "\n")
    assert main(["eval", str(path), "--cv", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("rule", "cascade", "learned", "oracle"):
        assert any(line.startswith(name) for line in out.splitlines()), name
    assert "escalation-rate" in out
    assert main(["eval", str(path), "--cv", "2", "--strategy", "cascade", "--gates", "bogus"]) == 1
    assert "unknown gate 'bogus'" in capsys.readouterr().err
    assert main(["eval", str(path), "--cv", "2",
                 "--strategy", f"rule:{tmp_path / 'nope.yaml'}"]) == 1
    assert "cannot read the policy file" in capsys.readouterr().err
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"text": "q", "outcomes": {"a": {"score": 1.0},
                                                        "b": {"score": 0.0}}}) + "\n")
    assert main(["eval", str(bare), "--test", str(bare), "--strategy", "cascade"]) == 1
    err = capsys.readouterr().err
    assert "needs recorded responses" in err and err.count("\n") == 1
