"""The gateway serves exactly the router it is given: the caller's gates, classifier and
providers reach it; the library, the CLI and the gateway decide alike; errors carry their
route."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskroute.classify.base import Prediction
from taskroute.cli.main import main
from taskroute.demo.policy import simulated_policy_text
from taskroute.exceptions import CallerError, ChainTimedOut, UpstreamError
from taskroute.gates.base import GateEnv
from taskroute.policy.loader import default_policy_text, load_policy
from taskroute.policy.model import GateSpec, Policy
from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse
from taskroute.router import Router
from tests.gateway.conftest import StartGateway
from tests.gateway.test_quality_api import post


def _hello(text: str) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}]}


async def test_the_gateway_honours_classifier_off(start_gateway: StartGateway) -> None:
    translate = _hello("Translate to French: good morning")
    on = await start_gateway(classifier=True)
    _, headers, _ = await post(on, translate)
    assert headers["X-Taskroute-Task"] == "transformation"   # what the classifier reads
    off = await start_gateway(classifier=False)
    _, headers, body = await post(off, translate, **{"X-Taskroute-Explain": "1"})
    assert headers["X-Taskroute-Task"] == "chat"
    assert body["taskroute"]["task_source"] == "default"


class KeywordClassifier:
    """A caller's own classifier: anything mentioning a gadget is a coding request."""

    def predict(self, text: str) -> Prediction:
        return Prediction("coding" if "gadget" in text else "chat", 0.99)


async def test_a_custom_classifier_reaches_the_gateway(start_gateway: StartGateway) -> None:
    gw = await start_gateway(classifier=KeywordClassifier())
    _, headers, body = await post(gw, _hello("tell me about the gadget"),
                                  **{"X-Taskroute-Explain": "1"})
    assert headers["X-Taskroute-Task"] == "coding"
    assert body["taskroute"]["task_source"] == "classifier"


class NoMiniGate:
    """A caller's own gate: rejects any answer from a *-mini model."""

    name = "no_mini"

    async def check(self, response: ChatResponse, request: ChatRequest) -> GateVerdict:
        ok = "mini" not in (response.model or "")
        return GateVerdict(self.name, ok, "" if ok else "answered by a mini model")


def _with_gate(policy: Policy) -> Policy:
    task = policy.tasks["summarization"]
    return replace(policy, tasks={**policy.tasks, "summarization": replace(
        task, gates=(*task.gates, GateSpec("no_mini")))})


async def test_a_custom_gate_reaches_the_gateway(start_gateway: StartGateway) -> None:
    def build(settings: Mapping[str, Any], env: GateEnv) -> NoMiniGate:
        return NoMiniGate()

    gw = await start_gateway(edit_policy=_with_gate, gates={"no_mini": build})
    summary = {"model": "taskroute/summarization",
               "messages": [{"role": "user", "content": "Summarize: the cat sat on the mat."}]}
    status, headers, body = await post(gw, summary, **{"X-Taskroute-Explain": "1"})
    assert status == 200, body
    assert headers["X-Taskroute-Escalated"] == "true"
    assert "mini" not in headers["X-Taskroute-Model"]
    first = body["taskroute"]["attempts"][0]
    assert first["model"] == "openai/gpt-4.1-mini" and first["status"] == "rejected"


class CountingProvider(OpenAIProvider):
    """A caller's own provider: the OpenAI wire, counting the calls it makes."""

    calls = 0

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        CountingProvider.calls += 1
        return await super().complete(request, model=model, timeouts=timeouts)


async def test_a_custom_provider_reaches_the_gateway(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream
) -> None:
    provider = CountingProvider(simulated_upstream.provider_spec("openai"))
    CountingProvider.calls = 0
    gw = await start_gateway(providers={"openai": provider,
                                        "anthropic": CountingProvider(
                                            simulated_upstream.provider_spec("anthropic"))})
    status, _, _ = await post(gw, _hello("hello there"))
    assert status == 200
    assert CountingProvider.calls == 1
    await provider.aclose()


# -- one decision, whichever door ---------------------------------------------------------------

REQUESTS: list[dict[str, Any]] = [
    _hello("Translate to French: good morning"),
    _hello("What is the boiling point of water at sea level?"),
    {**_hello("Extract the invoice number and total from: INV-42, $310.00"),
     "response_format": {"type": "json_object"}, "metadata": {"user_tier": "enterprise"}},
    {**_hello("Summarize this thread: we met, we agreed, we left."),
     "metadata": {"max_cost_usd": 0.0008}},
    {**_hello("Prove that there are infinitely many primes."),
     "metadata": {"session_id": "s-1", "user_id": "ann"}},
    {"model": "taskroute/coding", "messages": [{"role": "user", "content": "fix my regex"}],
     "tools": [{"type": "function", "function": {"name": "run", "parameters": {}}}]},
    {"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "hello"}]},
]
COMPARED = ("task", "task_source", "tier", "model", "chain", "routed", "estimated_cost_usd",
            "reasons")


def _cli_decision(policy_file: Path, request: dict[str, Any], tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    body = tmp_path / "request.json"
    body.write_text(json.dumps(request), encoding="utf-8")
    code = main(["route", "--request", str(body), "--json", "--policy", str(policy_file)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


async def test_library_cli_and_gateway_give_the_same_decisions(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(simulated_policy_text(default_policy_text(), simulated_upstream.url),
                           encoding="utf-8")
    library = Router(load_policy(policy_file))
    gw = await start_gateway(edit_policy=lambda _: load_policy(policy_file), classifier=True)
    capped = 0
    for request in REQUESTS:
        mine = library.decide(request).to_dict()
        code, theirs = _cli_decision(policy_file, request, tmp_path, capsys)
        assert code == 0, theirs
        status, _, body = await post(gw, request, **{"X-Taskroute-Explain": "1"})
        assert status == 200, body
        served = body["taskroute"]
        for key in COMPARED:
            assert mine[key] == theirs[key] == served[key], (key, request)
        capped += any("max_cost_usd" in r for r in mine["reasons"])
    assert capped == 1   # the cost cap is one of the steps compared


async def test_budgets_refuse_alike_in_the_library_the_cli_and_the_gateway(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = simulated_policy_text(default_policy_text(), simulated_upstream.url)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text + "budgets:\n  per day: 0\n", encoding="utf-8")
    request = _hello("hello there")
    with pytest.raises(CallerError, match=r"daily budget of \$0.00 for the gateway is used up"):
        Router.from_file(policy_file).decide(request)
    code, err = _cli_decision(policy_file, request, tmp_path, capsys)
    assert code == 1 and "daily budget of $0.00 for the gateway is used up" in err
    gw = await start_gateway(edit_policy=lambda _: load_policy(policy_file))
    status, headers, body = await post(gw, request)
    assert status == 429 and "daily budget of $0.00" in body["error"]["message"]
    assert 0 < int(headers["Retry-After"]) <= 86400        # seconds to the reset


async def test_the_library_keeps_to_the_budgets_it_spends_against(
    simulated_upstream: SimulatedUpstream, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(simulated_policy_text(default_policy_text(), simulated_upstream.url)
                           + "budgets:\n  per user: 0.0000001\n", encoding="utf-8")
    router = Router.from_file(policy_file, classifier=False)
    request = {**_hello("hello there"), "user": "ann"}
    try:
        await router.complete(request)            # spends more than the budget
        with pytest.raises(CallerError, match="for user 'ann' is used up"):
            router.decide(request)
        assert router.decide({**request, "user": "bob"}).model   # another user's is untouched
    finally:
        await router.aclose()


# -- errors carry their route -------------------------------------------------------------------


async def test_a_failure_carries_its_route_record(simulated_upstream: SimulatedUpstream) -> None:
    policy = load_policy_for(simulated_upstream)
    router = Router(policy, classifier=False)
    for spec in policy.models.values():
        simulated_upstream.fail(spec.upstream_name, 400)
    try:
        with pytest.raises(UpstreamError) as caught:
            await router.complete(_hello("hello there"), request_id="req-given")
    finally:
        await router.aclose()
    record = caught.value.record
    assert record is not None and record.request_id == "req-given"
    assert record.status == "error" and record.attempts
    assert not isinstance(caught.value, ChainTimedOut)


def load_policy_for(upstream: SimulatedUpstream) -> Policy:
    from taskroute.policy.loader import parse_policy

    return parse_policy(simulated_policy_text(default_policy_text(), upstream.url))
