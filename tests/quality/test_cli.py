"""`taskroute stats` and `taskroute ab report` over a log with known outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskroute.cli.main import main
from tests.quality.logbook import Logbook

MID = "openai/gpt-4.1"


def _log(tmp_path: Path) -> Path:
    log = Logbook(tmp_path / "log.db")
    for i in range(40):
        log.add(variant="A" if i % 2 else "B", user=f"u{i}",
                attempts=[("openai/gpt-4.1-mini", "rejected", 0.001), (MID, "ok", 0.004)]
                if i % 2 and i < 20 else None)
    log.close()
    return log.db


def test_stats_prints_a_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _log(tmp_path)
    assert main(["stats", "--db", str(db), "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert "chat" in table and "first pass" in table and "40 requests" in table
    assert main(["stats", "--db", str(db), "--by", "policy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in report["rows"]}
    assert rows["A"]["escalation"] == 10 / 20 and rows["B"]["escalation"] == 0.0


def test_stats_prints_the_misroutes_feedback_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taskroute.store import give_feedback

    log = Logbook(tmp_path / "log.db")
    ids = [log.add(), log.add(), log.add(), log.add(task="qa", tier="balanced")]
    log.close()
    assert main(["stats", "--db", str(log.db)]) == 0
    assert "misrouted" not in capsys.readouterr().out  # no feedback names a class yet
    give_feedback(log.db, ids[0], corrected=True, task="coding")
    give_feedback(log.db, ids[1], corrected=True, text="task: coding")   # the older way
    give_feedback(log.db, ids[2], thumbs="up", task="chat")              # served right
    give_feedback(log.db, ids[3], thumbs="down", task="reasoning")
    assert main(["stats", "--db", str(log.db)]) == 0
    assert ("3 misrouted, by feedback naming the class (chat → coding × 2, qa → reasoning × 1)"
            in capsys.readouterr().out)


def test_ab_report_says_the_escalation_difference_is_significant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _log(tmp_path)
    assert main(["ab", "report", "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (comparison,) = report["comparisons"]
    escalation = comparison["metrics"]["escalation"]
    assert (comparison["control"], comparison["variant"]) == ("A", "B")
    assert escalation["difference"] == -0.5 and escalation["significant"]
    assert main(["ab", "report", "--db", str(db)]) == 0
    assert "escalation" in capsys.readouterr().out


def test_ab_report_calls_nothing_significant_on_three_and_four_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = Logbook(tmp_path / "log.db")
    for i in range(7):      # A: 3 requests, all escalated, ~0 ms; B: 4, none, ~1 ms
        log.add(variant="A" if i < 3 else "B", user=f"u{i}", latency=0.0002 if i < 3 else 0.0013,
                attempts=[("openai/gpt-4.1-mini", "rejected", 0.001), (MID, "ok", 0.004)]
                if i < 3 else None)
    log.close()
    assert main(["ab", "report", "--db", str(log.db), "--json"]) == 0
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    escalation, latency = comparison["metrics"]["escalation"], comparison["metrics"]["latency"]
    assert escalation["difference"] == -1.0 and escalation["p_value"] < 0.05
    assert not escalation["significant"]
    assert escalation["why"] == "too few requests: 3 and 4; about 12 per variant needed"
    assert latency["ci95"][0] > 0 and not latency["significant"]
    assert latency["why"].startswith("too few answered requests: 3 and 4")
    assert main(["ab", "report", "--db", str(log.db)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "escalation" in x)
    assert line.endswith("not significant: too few requests: 3 and 4; about 12 per variant "
                         "needed; ~9 more requests per variant to tell")


def test_stats_on_a_missing_log_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--db", str(tmp_path / "none.db")]) == 1
    assert "no request log at" in capsys.readouterr().err
    assert main(["stats", "--db", str(tmp_path / "none.db"), "--since", "soon"]) == 1
    not_a_log = tmp_path / "notes.db"
    not_a_log.write_text("these are my notes, not a database\n" * 200)
    capsys.readouterr()
    assert main(["ab", "report", "--db", str(not_a_log)]) == 1
    err = capsys.readouterr().err
    assert "cannot open it as the request log" in err and len(err.strip().splitlines()) == 1
