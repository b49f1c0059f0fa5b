"""`taskroute demo`, the README's front door: the simulated pipeline end to end, the route's
label shown before each streamed answer, then the route table."""

from __future__ import annotations

import re

import pytest

from taskroute.cli.main import main


def test_demo_shows_labels_before_answers_then_the_route_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  \[Quick answer\] gpt-4\.1-mini answers: ", out, re.MULTILINE)
    assert re.search(r"^  \[Using advanced analysis\] claude-opus-4-5 answers: ", out,
                     re.MULTILINE)
    assert out.count("(label after ") == 2
    assert "task class" in out and re.search(r"^all +40 ", out, re.MULTILINE)
    assert "is in the request log" in out
