"""The data, train, calibrate and eval commands end to end on a small generated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskroute.cli.main import main


def _csv(tmp_path: Path) -> Path:
    rows = ["prompt,cheap,dear"]
    for i in range(120):
        hard = i % 3 == 0
        rows.append(f"solve equation {i} for x,{'False' if hard else 'True'},True" if hard
                    else f"say hello {i},True,{'True' if i % 2 else 'False'}")
    path = tmp_path / "set.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_train_calibrate_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set.jsonl"
    assert main(["data", "import", "routellm", str(_csv(tmp_path)), "-o", str(out)]) == 0
    model = tmp_path / "r.npz"
    assert main(["train", str(out), "-o", str(model), "--C", "1"]) == 0
    assert main(["calibrate", str(model), str(out), "--strong-share", "30%"]) == 0
    report = tmp_path / "r.html"
    assert main(["eval", str(out), "--cv", "3", "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "APGR" in printed and "learned" in printed
    assert "data:image/png;base64" in report.read_text()


def test_bad_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("prompt,a\nq,perhaps\n")
    assert main(["data", "import", "routellm", str(bad), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "row 2, field 'a'" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_router_is_still_accepted_as_the_strategy_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "set.jsonl"
    assert main(["data", "import", "routellm", str(_csv(tmp_path)), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--cv", "2", "--router", "always:cheap",
                 "--strategy", "oracle"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[0] == "strategy"
    assert [line.split()[0] for line in table[1:3]] == ["always:cheap", "oracle"]


def test_an_unknown_strategy_is_named_as_one(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out = tmp_path / "set.jsonl"
    assert main(["data", "import", "routellm", str(_csv(tmp_path)), "-o", str(out)]) == 0
    assert main(["eval", str(out), "--cv", "2", "--strategy", "nope"]) == 1
    assert "unknown strategy 'nope'" in capsys.readouterr().err
