"""scripts/score_task_classifier.py: a classifier scored on Dolly-format prompts kept apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "score_task_classifier.py"


def _record(instruction: str, category: str, context: str = "") -> str:
    return json.dumps({"instruction": instruction, "context": context, "response": "",
                       "category": category})


def test_scores_class_and_tier_per_category(tmp_path: Path) -> None:
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("\n".join([
        _record("Write a short poem about a fox in the snow.", "creative_writing"),
        _record("Which of these are birds and which are fish: sparrow, trout, heron, cod",
                "classification"),
        # a classification labelled open_qa: the class is wrong, and so is the tier
        # (classification is fast, qa balanced in the default policy)
        _record("Which of these are birds and which are fish: owl, carp, wren, pike",
                "open_qa"),
    ]) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), str(held_out)], capture_output=True,
                          text=True, timeout=60, check=True)
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:]}
    assert lines["creative_writing"] == ["1", "1.000", "1.000"]
    assert lines["classification"] == ["1", "1.000", "1.000"]
    assert lines["open_qa"] == ["1", "0.000", "0.000"]
    assert lines["headline"] == ["six", "2", "0.500", "0.500"]
    assert lines["all"] == ["3", "0.667", "0.667"]


def test_a_record_without_a_known_category_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_record("Write a haiku.", "poetry") + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"{bad}: row 1: needs 'instruction' and a 'category' of brainstorming, classification, "
        "closed_qa, creative_writing, general_qa, information_extraction, open_qa, "
        "summarization"]
