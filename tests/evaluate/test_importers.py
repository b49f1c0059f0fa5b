"""Each importer on small files it writes, bad rows named, and the shared sets when present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskroute.evaluate.datasets import Dataset, load_jsonl, write_jsonl
from taskroute.evaluate.importers import load
from taskroute.exceptions import DataError


def test_routellm_folder_subject_and_contamination(tmp_path: Path) -> None:
    (tmp_path / "mmlu_anatomy.csv").write_text(
        'prompt,weak,strong\n"Q1\nA. x\nAnswer:",True,False\nQ2,False,True\n')
    (tmp_path / "mmlu_law.csv").write_text("prompt,weak,strong\nQ3,True,True\n")
    (tmp_path / "contaminated_prompts.jsonl").write_text('{"eval_prompt": "Q2"}\n')
    records = load("routellm", tmp_path)
    assert [r.text for r in records] == ["Q1\nA. x\nAnswer:", "Q3"]
    assert records[0].meta == {"subject": "anatomy"}
    assert records[0].outcomes["weak"].score == 1.0
    assert records[0].outcomes["strong"].score == 0.0


def test_routellm_bad_value_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("prompt,a\nQ1,True\nQ2,maybe\n")
    with pytest.raises(DataError, match=r"row 3, field 'a'"):
        load("routellm", path)


def test_llmrouter_costs_from_prices(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text(json.dumps(
        {"a": {"input_price": 1.0, "output_price": 2.0},
         "b": {"input_price": 0, "output_price": 0}}))
    (tmp_path / "t.json").write_text(json.dumps(
        [{"question": "x" * 40, "scores": {"a": 1, "b": 0.5}}]))
    (rec,) = load("llmrouter", tmp_path / "t.json")
    assert rec.outcomes["a"].cost == pytest.approx((10 * 1.0 + 200 * 2.0) / 1e6)
    assert rec.outcomes["b"].score == 0.5


def test_llmrouter_unpriced_model_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text(json.dumps({"a": {"input_price": 1, "output_price": 1}}))
    (tmp_path / "t.json").write_text(json.dumps([{"question": "q", "scores": {"c": 1}}]))
    with pytest.raises(DataError, match=r"row 1, field 'scores.c'"):
        load("llmrouter", tmp_path / "t.json")


def test_routerbench_empty_score_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "rb.csv"
    path.write_text("sample_id,prompt,eval_name,a,b,a|model_response,a|total_cost,b|total_cost,"
                    "oracle_model_to_route_to\n1,hi,mmlu,1.0,,ok,0.01,,a\n")
    (rec,) = load("routerbench", path)
    assert set(rec.outcomes) == {"a"} and rec.task == "mmlu"
    assert rec.outcomes["a"].cost == 0.01 and rec.outcomes["a"].response == "ok"


def test_mtbench_scores_scaled_and_failed_judgements_skipped(tmp_path: Path) -> None:
    (tmp_path / "question.jsonl").write_text(
        json.dumps({"question_id": 1, "category": "math", "turns": ["t1", "t2"]}) + "\n")
    (tmp_path / "judgment.jsonl").write_text("\n".join(json.dumps(j) for j in [
        {"question_id": 1, "model": "a", "score": 8, "turn": 1},
        {"question_id": 1, "model": "b", "score": -1, "turn": 1},
        {"question_id": 1, "model": "b", "score": 4, "turn": 2}]) + "\n")
    records = {r.id: r for r in load("mtbench", tmp_path)}
    assert records["1/1"].outcomes["a"].score == 0.8 and "b" not in records["1/1"].outcomes
    assert records["1/2"].text == "t2" and records["1/2"].task == "math"


def test_store_groups_calls_by_prompt(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(j) for j in [
        {"prompt": "p", "model": "a", "feedback": "up", "cost": 0.1},
        {"prompt": "p", "model": "b", "score": 0.0},
        {"prompt": "q", "model": "a"}]) + "\n")
    (rec,) = load("store", path)
    assert rec.outcomes["a"].score == 1.0 and rec.outcomes["a"].cost == 0.1


def test_jsonl_round_trip_and_atomic_write(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("prompt,a,b\nQ1,True,False\n")
    out = tmp_path / "out.jsonl"
    write_jsonl(load("routellm", src), out)
    data = load_jsonl(out)
    assert data.models == ("a", "b") and data.scores().tolist() == [[1.0, 0.0]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "q", "outcomes": {"a": {"score": 2}}}\n')
    with pytest.raises(DataError, match=r"row 1, field 'outcomes.a.score'"):
        load_jsonl(bad)


def test_shared_mmlu_counts(shared_data: Path) -> None:
    data = Dataset.from_records(load("routellm", shared_data / "routellm-mmlu"))
    scores = data.scores()
    assert len(data) == 14037
    strong = data.models.index("gpt-4-1106-preview")
    assert scores[:, strong].mean() == pytest.approx(0.8059, abs=1e-4)
