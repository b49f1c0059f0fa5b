"""`taskroute ask` against the stand-in upstream (served from its own thread)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskroute.cli.ask import print_route
from taskroute.cli.main import main
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router

POLICY = """
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
models:
  sim/small: {{tier: fast, price: {{input: 1, output: 2}}}}
  sim/large: {{tier: strong, price: {{input: 20, output: 40}}}}
tiers:
  fast: {{use: sim/small, escalate to: [sim/large]}}
  strong: {{use: sim/large}}
tasks:
  chat: {{tier: fast, gates: [non_empty, refusal]}}
classifier: false
calling: {{retries: 0}}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimulatedUpstream, str]]:
    with SimulatedUpstream() as upstream:
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.format(url=upstream.url))
        yield upstream, str(path)


def test_ask_prints_the_answer_then_each_attempt_and_the_cost(
    served: tuple[SimulatedUpstream, str], capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, policy = served
    upstream.refuse("small")
    assert main(["ask", "what is tea?", "--policy", policy]) == 0
    out = capsys.readouterr().out
    answer, _, route = out.partition("\n\n")
    assert answer.startswith("large answers")
    assert "1. sim/small [first] rejected by refusal" in route
    assert "2. sim/large [escalation] ok" in route
    assert "Total: $" in route and "(escalated)" in route


def test_ask_streams_and_prints_json(
    served: tuple[SimulatedUpstream, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, policy = served
    assert main(["ask", "hello", "--policy", policy, "--stream"]) == 0
    assert capsys.readouterr().out.startswith("small answers")
    assert main(["ask", "hello", "--policy", policy, "--json", "--stream"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["answer"].startswith("small answers")
    assert body["route"]["attempts"][0]["status"] == "ok"


def test_ask_failures_are_one_line(
    served: tuple[SimulatedUpstream, str], capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, policy = served
    upstream.fail("small", 500)
    upstream.fail("large", 503)
    assert main(["ask", "hello", "--policy", policy]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("taskroute: error: no model in the chain")
    assert main(["ask", "hello", "--policy", policy, "--task", "nope"]) == 1
    assert "unknown task class 'nope'" in capsys.readouterr().err


def test_ask_with_no_provider_key_says_so_in_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["ask", "hi"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("taskroute: error: no provider key is set: "
                   "set ANTHROPIC_API_KEY, OPENAI_API_KEY")


def test_a_failed_chain_is_the_first_cause_and_a_count(
    served: tuple[SimulatedUpstream, str], capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, policy = served
    upstream.fail("small", 500)
    upstream.fail("large", 503)
    assert main(["ask", "hello", "--policy", policy]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err) < 240 and "sim/small [first] error" in err
    assert err.endswith("(2 attempts failed; --json for all)")
    assert main(["ask", "hello", "--policy", policy, "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert len(body["route"]["attempts"]) == 2 and "sim/large" in body["error"]


def test_the_route_line_says_how_sure_the_race_was_and_what_said_so() -> None:
    decision = Router.default(classifier=False).decide(ChatRequest.from_prompt("hi"))
    out = io.StringIO()
    print_route(RouteRecord("r", decision, answered_by=decision.model, race_winner="cheap",
                            race_confidence=0.95, confidence_source="estimate"), out)
    assert "won the race; the cheap answer's confidence 0.95 from estimate" in out.getvalue()


def test_ask_stream_shows_the_route_label_before_the_answer(
    served: tuple[SimulatedUpstream, str], capsys: pytest.CaptureFixture[str],
) -> None:
    _, policy = served
    text = Path(policy).read_text()
    labelled = text.replace("escalate to: [sim/large]}", "escalate to: [sim/large], "
                            "label: Quick answer}")
    assert labelled != text
    Path(policy).write_text(labelled)
    assert main(["ask", "what is tea?", "--policy", policy, "--stream"]) == 0
    assert capsys.readouterr().out.startswith("[Quick answer] small answers")
    Path(policy).write_text(text)  # no label: the answer alone
    assert main(["ask", "what is tea?", "--policy", policy, "--stream"]) == 0
    assert capsys.readouterr().out.startswith("small answers")
