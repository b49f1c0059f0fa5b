"""Training from the gateway's own traffic: requests and feedback through the gateway become a
corrected task classifier and an escalation gate, and the policy using both runs in shadow.

The log is built through the real gateway in front of the stand-in upstream; feedback goes
through `POST /v1/taskroute/feedback`. Feedback `"task": "coding"` says the request was
misrouted (it was coding) — as does, from a client of before the field, a text `task: coding`;
thumbs say whether the answer was good enough.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from taskroute.cli.main import main
from taskroute.gateway.context import GATEWAY
from taskroute.learned.escalation import EscalationModel
from taskroute.policy.model import GateSpec, Policy
from taskroute.providers.simulated.answers import HEDGE
from taskroute.providers.simulated.profiles import ModelProfile
from tests.gateway.conftest import RunningGateway, StartGateway

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CLASSIFIER = ROOT / "scripts" / "train_task_classifier.py"
EXAMPLES = ROOT / "taskroute" / "data" / "task_examples.jsonl"
MISROUTED = "Make the spinner on the checkout page stop flickering when the cart updates."
NOTES = "Turn these meeting notes into a short list of action items for the team."
QUESTIONS = ("Why do leaves change colour in autumn?", "How do tides work?",
             "What causes thunder?", "Why is the sky blue?", "How do vaccines work?",
             "What makes bread rise?", "How do bees make honey?", "Why do cats purr?")


async def _ask(gw: RunningGateway, text: str, model: str = "auto") -> tuple[str, str]:
    """The request id and the answer's text."""
    status, headers, raw = await gw.request("POST", "/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": text}]})
    assert status == 200, raw
    return headers["X-Taskroute-Request-Id"], json.loads(raw)["choices"][0]["message"]["content"]


async def _feedback(gw: RunningGateway, request_id: str, **body: object) -> None:
    status, _, raw = await gw.request("POST", "/v1/taskroute/feedback",
                                      json={"request_id": request_id, **body})
    assert status == 201, raw


async def _train_classifier(data: Path, out: Path, corrections: Path | None) -> str:
    """What the training printed."""
    args = [str(TRAIN_CLASSIFIER), "--data", str(data), "--no-dolly", "--no-cv", "--C", "30",
            "--out", str(out), *(["--corrections", str(corrections)] if corrections else [])]
    proc = await asyncio.create_subprocess_exec(sys.executable, *args,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()
    return output.decode()


def _task_of(db: Path, request_id: str, table: str = "requests") -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(f"SELECT task FROM {table} WHERE request_id = ?",
                           (request_id,)).fetchone()
    assert row is not None, f"request {request_id} not in {table}"
    return str(row[0])


def _running(policy: Policy) -> Policy:
    """The running policy logs prompts and answers; its qa answers pass on being non-empty
    alone, so hedged ones reach the users (what the learned gate is to catch)."""
    qa = replace(policy.tasks["qa"], gates=(GateSpec("non_empty"),))
    return replace(policy, log_content=True, tasks={**policy.tasks, "qa": qa})


@pytest.mark.timeout(240)
async def test_the_log_trains_the_classifier_and_the_gate_and_the_result_runs_in_shadow(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(edit_policy=_running, classifier=True)

    # Traffic: a misrouted request, corrected by its user ...
    misrouted, _ = await _ask(gw, MISROUTED)
    await gw.store.flush()
    served = _task_of(gw.db, misrouted)
    assert served != "coding", "the premise: the bundled classifier misroutes this prompt"
    await _feedback(gw, misrouted, corrected=True, task="coding")
    noted, _ = await _ask(gw, NOTES)  # ... and one by the text convention from before the field
    await _feedback(gw, noted, corrected=True, text="task: summarization")
    # ... and questions whose answers the users rate: hedged answers (a question too hard for
    # the model that answered) get a thumbs down, sure ones a thumbs up.
    for spec in gw.app[GATEWAY].routers.router.policy.models.values():
        gw.upstream.set_profile(spec.id.partition("/")[2], ModelProfile(skill=0.5))
    rated = {"up": 0, "down": 0}
    for i, question in enumerate(QUESTIONS):
        hard = i % 2 == 0
        rid, answer = await _ask(gw, f"{question} [difficulty={0.99 if hard else 0.01}]",
                                 model="taskroute/qa")
        thumbs = "down" if answer.startswith(HEDGE) else "up"
        rated[thumbs] += 1
        await _feedback(gw, rid, thumbs=thumbs)
    assert rated["up"] and rated["down"], rated
    await gw.store.flush()
    status, _, raw = await gw.request("GET", "/v1/taskroute/stats")
    assert status == 200, raw
    named = {(served, "coding"), (_task_of(gw.db, noted), "summarization")}
    assert {(p["served"], p["named"]) for p in json.loads(raw)["misroutes"]["pairs"]} == {
        (s, n) for s, n in named if s != n}  # the stats count both ways of naming the class

    # The escalation gate, trained on the log's rated answers.
    gate_file = tmp_path / "gate.json"
    assert main(["train", f"store:{gw.db}", "--gate", "-o", str(gate_file)]) == 0
    gate = EscalationModel.from_file(gate_file)
    question = QUESTIONS[0]
    assert gate.probability(question, f"{HEDGE} something about leaves.") < \
        gate.probability(question, "Leaves lose chlorophyll in the cold, so other pigments show.")

    # The classifier, retrained with the correction, and without it as the control.
    data = tmp_path / "examples.jsonl"
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(lines[::4]) + "\n", encoding="utf-8")  # a quarter: a quick fit
    corrected, control = tmp_path / "corrected.json", tmp_path / "control.json"
    printed, _ = await asyncio.gather(_train_classifier(data, corrected, gw.db),
                                      _train_classifier(data, control, None))
    assert f"2 corrections from {gw.db}: {{'coding': 1, 'summarization': 1}}" in printed
    from taskroute.classify.learned import LinearTaskClassifier

    assert LinearTaskClassifier.from_file(corrected).predict(MISROUTED).task == "coding"
    assert LinearTaskClassifier.from_file(control).predict(MISROUTED).task != "coding"
    assert json.loads(corrected.read_text())["training"]["corrections"] == 2

    # The new policy in shadow: decided and logged beside the served one, never served.
    def with_candidate(policy: Policy) -> Policy:
        policy = _running(policy)
        qa = policy.tasks["qa"]
        candidate = replace(
            policy, name="candidate",
            classifier=replace(policy.classifier, model_file=str(corrected)),
            tasks={**policy.tasks, "qa": replace(qa, gates=(*qa.gates, GateSpec(
                "learned", {"model_file": str(gate_file), "min_confidence": 0.5})))})
        return replace(_running(policy), shadow=candidate)

    shadowed = await start_gateway(edit_policy=with_candidate, classifier=True)
    again, _ = await _ask(shadowed, MISROUTED)
    await shadowed.store.flush()
    assert _task_of(shadowed.db, again) == served            # the running policy serves
    assert _task_of(shadowed.db, again, "shadow_decisions") == "coding"
    with sqlite3.connect(shadowed.db) as conn:
        (policy_name,) = conn.execute("SELECT policy FROM shadow_decisions").fetchone()
    assert policy_name == "candidate"
