"""The shadow report through the real gateway: a shadow policy that disagrees on two task
classes, known escalations and feedback; the endpoint's and the CLI's numbers against figures
computed here from the raw log rows and the policy's prices."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from typing import Any

import pytest

from taskroute.cli.main import main
from taskroute.gateway.context import GATEWAY
from taskroute.policy.model import Policy
from tests.gateway.conftest import RunningGateway, StartGateway

# the shadow sends summarization to the strong tier and qa to the fast one; coding agrees
SHADOW_TIER = {"summarization": "strong", "qa": "fast", "coding": "balanced"}
TRAFFIC = ["summarization"] * 4 + ["qa"] * 3 + ["coding"] * 2
# request index → the feedback it gets
FEEDBACK: dict[int, dict[str, Any]] = {
    0: {"thumbs": "down", "corrected": True},   # answered by the fast model
    1: {"thumbs": "up"},                        # escalated up to the strong model: the shadow's
    5: {"thumbs": "up"},                        # qa, the balanced model (not the shadow's pick)
    7: {"score": 0.4},                          # coding, where both agree: not good (< 0.5)
}


def shadowed(policy: Policy) -> Policy:
    tasks = {name: replace(spec, tier=SHADOW_TIER.get(name, spec.tier))
             for name, spec in policy.tasks.items()}
    return replace(policy, shadow=replace(policy, name="candidate", tasks=tasks))


def wilson_bounds(k: int, n: int) -> list[float]:
    """The two roots p of (k/n − p)² = z²·p(1 − p)/n: the Wilson interval, solved afresh."""
    z2, phat = 1.959964 ** 2, k / n
    a, b, c = 1 + z2 / n, -(2 * phat + z2 / n), phat * phat
    root = math.sqrt(b * b - 4 * a * c)
    return [(-b - root) / (2 * a), (-b + root) / (2 * a)]


async def _traffic(gw: RunningGateway) -> list[str]:
    ids = []
    for i, task in enumerate(TRAFFIC):
        if i == 1:                                  # fast, then balanced, cut short: strong
            gw.upstream.truncate("gpt-4.1-mini", times=1)
            gw.upstream.truncate("gpt-4.1", times=1)
        if i == 4:                                  # qa's balanced pick cut short once
            gw.upstream.truncate("gpt-4.1", times=1)
        status, headers, _ = await gw.request("POST", "/v1/chat/completions", json={
            "model": f"taskroute/{task}", "user": f"u{i}",
            "messages": [{"role": "user", "content": f"Please handle item {i} " * (i + 1)}]})
        assert status == 200
        ids.append(headers["X-Taskroute-Request-Id"])
    for i, given in FEEDBACK.items():
        status, _, raw = await gw.request("POST", "/v1/taskroute/feedback",
                                          json={"request_id": ids[i], **given})
        assert status == 201, raw
    return ids


async def _expected(gw: RunningGateway, ids: list[str]) -> dict[str, Any]:
    """Each figure from the raw rows, request by request."""
    policy = gw.app[GATEWAY].routers.router.policy
    candidate = policy.shadow
    assert candidate is not None
    requests = {r["request_id"]: r for r in await gw.log_rows()}
    attempts: dict[str, list[Any]] = {}
    for a in await gw.log_rows("SELECT * FROM attempts ORDER BY seq"):
        attempts.setdefault(a["request_id"], []).append(a)
    per_class: dict[str, dict[str, Any]] = {}
    totals: dict[str, Any] = {"n": 0, "same_model": 0, "shadow_cost": 0.0, "served_cost": 0.0,
              "fb": [0, 0], "served_fb": [0, 0], "gates": [0, 0], "served_gates": [0, 0]}
    for i, request_id in enumerate(ids):
        task = TRAFFIC[i]
        row, tried = requests[request_id], attempts[request_id]
        shadow_model = candidate.tier(SHADOW_TIER[task]).model
        answering = [a for a in tried if a["status"] in ("ok", "unchecked")][-1]
        price = candidate.models[shadow_model].price
        shadow_cost = (max(a["input_tokens"] for a in tried) * price.input
                       + answering["output_tokens"] * price.output) / 1e6
        c = per_class.setdefault(task, {"n": 0, "same_model": 0, "same_tier": 0,
                                        "shadow_cost": 0.0, "served_cost": 0.0})
        for bucket in (c, totals):
            bucket["n"] += 1
            bucket["same_model"] += row["model"] == shadow_model
            bucket["shadow_cost"] += shadow_cost
            bucket["served_cost"] += row["cost_usd"]
        c["same_tier"] += row["tier"] == SHADOW_TIER[task]
        given = FEEDBACK.get(i)
        if given is not None:
            good = not given.get("corrected") and given.get("score", 1.0) >= 0.5 and \
                given.get("thumbs") != "down"
            totals["served_fb"][0] += good
            totals["served_fb"][1] += 1
            if answering["model"] == shadow_model:
                totals["fb"][0] += good
                totals["fb"][1] += 1
        for model, key in ((shadow_model, "gates"), (row["model"], "served_gates")):
            verdicts = [a["status"] for a in tried
                        if a["model"] == model and a["status"] in ("ok", "rejected")]
            if verdicts:
                totals[key][0] += verdicts[0] == "ok"
                totals[key][1] += 1
    return {"classes": per_class, "totals": totals}


def _check_share(got: dict[str, Any], good_n: list[int]) -> None:
    good, n = good_n
    assert (got["good"], got["n"]) == (good, n)
    if n:
        assert got["rate"] == pytest.approx(good / n, abs=1e-6)
        assert got["ci95"] == pytest.approx(wilson_bounds(good, n), abs=1e-5)
    else:
        assert got["rate"] is None and got["ci95"] is None


async def test_the_shadow_report_matches_the_log_request_by_request(
    start_gateway: StartGateway, capsys: pytest.CaptureFixture[str],
) -> None:
    gw = await start_gateway(edit_policy=shadowed)
    ids = await _traffic(gw)
    want = await _expected(gw, ids)
    status, _, raw = await gw.request("GET", "/v1/taskroute/shadow?since=1h")
    assert status == 200
    report = json.loads(raw)
    assert report["interval"] == "Wilson score, 95%"
    (got,) = report["policies"]
    t = want["totals"]
    assert got["policy"] == "candidate" and got["requests"] == len(TRAFFIC) == t["n"]
    assert got["agreement"]["model"] == pytest.approx(t["same_model"] / t["n"], abs=1e-6)
    assert got["agreement"]["task"] == 1.0          # the same classes: only tiers differ
    assert got["shadow_cost_usd"] == pytest.approx(t["shadow_cost"], rel=1e-6)
    assert got["served_cost_usd"] == pytest.approx(t["served_cost"], rel=1e-6)
    assert got["unpriced_models"] == [] and got["priced_requests"] == len(TRAFFIC)
    _check_share(got["quality"]["shadow"]["feedback"], t["fb"])
    _check_share(got["quality"]["served"]["feedback"], t["served_fb"])
    _check_share(got["quality"]["shadow"]["gates"], t["gates"])
    _check_share(got["quality"]["served"]["gates"], t["served_gates"])
    # what the scenario was built to give: one each way, so the test cannot pass on zeros
    assert t["fb"] == [1, 2] and t["served_fb"] == [2, 4]
    assert t["served_gates"][0] < t["served_gates"][1]
    assert t["gates"][1] >= 3
    by_class = {c["task"]: c for c in got["classes"]}
    assert set(by_class) == set(want["classes"])
    for task, c in want["classes"].items():
        shown = by_class[task]
        assert shown["requests"] == c["n"]
        assert shown["agreement"]["model"] == pytest.approx(c["same_model"] / c["n"], abs=1e-6)
        assert shown["agreement"]["tier"] == pytest.approx(c["same_tier"] / c["n"], abs=1e-6)
        assert shown["shadow_cost_usd"] == pytest.approx(c["shadow_cost"], rel=1e-6)
        assert shown["served_cost_usd"] == pytest.approx(c["served_cost"], rel=1e-6)
    assert by_class["coding"]["agreement"]["model"] == 1.0
    assert by_class["summarization"]["agreement"]["model"] == 0.0
    assert by_class["summarization"]["shadow_models"] == {"anthropic/claude-opus-4-5": 4}

    # the CLI reads the same log through the same door and says the same
    await gw.store.flush()
    capsys.readouterr()
    assert await asyncio.to_thread(
        main, ["shadow", "report", "--db", str(gw.db), "--since", "1h", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (cli,) = printed["policies"]
    assert cli["requests"] == got["requests"] and cli["agreement"] == got["agreement"]
    assert cli["quality"] == got["quality"] and cli["served_cost_usd"] == pytest.approx(
        got["served_cost_usd"])
    assert await asyncio.to_thread(
        main, ["shadow", "report", "--db", str(gw.db), "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert "candidate: 9 requests" in table and "summarization" in table


async def test_without_a_shadow_the_report_says_how_to_get_one(
    start_gateway: StartGateway, capsys: pytest.CaptureFixture[str],
) -> None:
    gw = await start_gateway()
    status, _, raw = await gw.request("GET", "/v1/taskroute/shadow")
    assert status == 200 and json.loads(raw)["policies"] == []
    await gw.store.flush()
    assert await asyncio.to_thread(main, ["shadow", "report", "--db", str(gw.db)]) == 0
    assert "no shadow decisions" in capsys.readouterr().out

