"""Route quality through the real gateway and the simulated upstream: stats with known outcomes,
feedback rules, variants recorded, shadow decisions, budgets, the cost cap and policy reload."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskroute.demo.policy import simulated_policy_text
from taskroute.gateway.app import create_app
from taskroute.gateway.context import GATEWAY
from taskroute.gateway.quality_api import QUALITY
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.loader import default_policy_text, load_default_policy, load_policy
from taskroute.policy.model import BudgetSpec, Policy, VariantSpec
from taskroute.quality.variants import assign
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore
from tests.calling.support import MemoryStore
from tests.gateway.conftest import RunningGateway, StartGateway

SUMMARY = {"model": "taskroute/summarization",
           "messages": [{"role": "user", "content": "Summarize: the cat sat on the mat."}]}


async def post(gw: RunningGateway, body: dict[str, Any], **headers: str
               ) -> tuple[int, dict[str, str], Any]:
    status, got, raw = await gw.request("POST", "/v1/chat/completions", json=body,
                                        headers=headers)
    return status, got, json.loads(raw)


async def get_json(gw: RunningGateway, path: str) -> Any:
    status, _, raw = await gw.request("GET", path)
    assert status == 200, raw
    return json.loads(raw)


async def test_stats_match_the_known_outcomes(gateway: RunningGateway) -> None:
    costs = []
    for _ in range(3):
        status, headers, _ = await post(gateway, SUMMARY)
        assert status == 200
        costs.append(float(headers["X-Taskroute-Cost-USD"]))
    gateway.upstream.truncate("gpt-4.1-mini", times=1)   # its answer fails not_truncated
    status, headers, _ = await post(gateway, SUMMARY)
    assert status == 200 and headers["X-Taskroute-Escalated"] == "true"
    costs.append(float(headers["X-Taskroute-Cost-USD"]))
    await gateway.store.flush()
    stats = await get_json(gateway, "/v1/taskroute/stats?since=1h")
    (row,) = stats["rows"]
    assert (row["task"], row["tier"], row["model"]) == (
        "summarization", "fast", "openai/gpt-4.1-mini")
    assert row["requests"] == 4 and row["completed"] == 4
    assert row["first_pass"] == 3 / 4 and row["escalation"] == 1 / 4
    assert row["under_served"] == 1 / 4 and row["upstream_error"] == 0.0
    assert abs(row["cost_per_task"] - sum(costs) / 4) < 1e-8   # the rejected answer counts
    latencies = sorted(r["latency_s"] for r in await gateway.log_rows())
    assert abs(row["latency_p50"] - latencies[1]) <= 0.03 * latencies[1] + 1e-4
    by_class = await get_json(gateway, "/v1/taskroute/stats?since=1h&by=class")
    assert by_class["rows"][0]["task"] == "summarization"
    status, _, body = await gateway.request("GET", "/v1/taskroute/stats?by=colour")
    assert status == 400 and b"'by' is one of" in body


async def test_feedback_rules(gateway: RunningGateway) -> None:
    _, headers, _ = await post(gateway, SUMMARY)
    request_id = headers["X-Taskroute-Request-Id"]
    send = gateway.request
    status, _, body = await send("POST", "/v1/taskroute/feedback",
                                 json={"thumbs": "down", "corrected": True, "text": "wrong"},
                                 headers={"X-Taskroute-Request-Id": request_id})
    assert status == 201, body
    status, _, body = await send("POST", "/v1/taskroute/feedback",
                                 json={"request_id": request_id, "score": 1})
    assert status == 409 and b"already has feedback" in body
    assert json.loads(body)["error"]["type"] == "conflict_error"  # the caller's, not ours
    status, _, body = await send("POST", "/v1/taskroute/feedback",
                                 json={"request_id": "req-nope", "score": 1})
    assert status == 404 and b"no logged request" in body
    for bad in (b"{not json", b'["a"]', b'{"request_id": "x", "score": 2}',
                b'{"request_id": "x", "thumbs": "sideways"}', b'{"request_id": "x"}',
                b'{"request_id": "x", "score": 1, "stars": 5}'):
        status, _, body = await send("POST", "/v1/taskroute/feedback", data=bad,
                                     headers={"Content-Type": "application/json"})
        assert status == 400, (bad, body)
        assert json.loads(body)["error"]["message"]
    stats = await get_json(gateway, "/v1/taskroute/stats?since=1h")
    assert stats["total"]["feedback"] == 1 and stats["total"]["correction"] == 1.0
    assert stats["total"]["score"] == 0.0


async def test_feedback_names_the_task_class_the_request_really_was(
    start_gateway: StartGateway
) -> None:
    def with_candidate(policy: Policy) -> Policy:  # a shadow adding a class: it may be named
        sql = replace(policy.tasks["coding"], name="sql")
        return replace(policy, shadow=replace(policy, name="candidate",
                                              tasks={**policy.tasks, "sql": sql}))

    gw = await start_gateway(edit_policy=with_candidate)
    ids = [(await post(gw, SUMMARY))[1]["X-Taskroute-Request-Id"] for _ in range(4)]
    known = sorted(gw.app[GATEWAY].routers.router.policy.tasks)

    async def feedback(body: dict[str, Any]) -> tuple[int, Any]:
        status, _, raw = await gw.request("POST", "/v1/taskroute/feedback", json=body)
        return status, json.loads(raw)

    status, body = await feedback({"request_id": ids[0], "corrected": True, "task": "poetry"})
    assert status == 400, body
    error = body["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "task")
    assert "'poetry'" in error["message"]
    assert error["message"].endswith("known: " + ", ".join(sorted([*known, "sql"])))
    for bad in ("Coding", "coding please", 3, "", "x" * 65):
        status, body = await feedback({"request_id": ids[0], "corrected": True, "task": bad})
        assert status == 400 and body["error"]["param"] == "task", (bad, body)
        assert "task class name" in body["error"]["message"]
    # the refused ones recorded nothing: the request still takes its one feedback
    for request_id, extra in zip(ids, ({"task": "coding"}, {"task": "sql"},
                                       {"text": "task: qa"}, {"task": "summarization"}),
                                 strict=True):
        status, body = await feedback({"request_id": request_id, "thumbs": "down", **extra})
        assert status == 201, body
    stats = await get_json(gw, "/v1/taskroute/stats?since=1h")
    assert stats["misroutes"] == {"named": 4, "misrouted": 3, "pairs": [
        {"served": "summarization", "named": named, "requests": 1}
        for named in ("coding", "qa", "sql")]}


def _with_variants(policy: Policy) -> Policy:
    lean = replace(policy, name="lean")
    return replace(policy, variants=(VariantSpec("control", 50), VariantSpec("lean", 50, lean)))


async def test_variants_are_sticky_and_recorded_on_every_request(
    start_gateway: StartGateway
) -> None:
    gw = await start_gateway(edit_policy=_with_variants)
    users = [f"user-{i}" for i in range(12)]
    for user in users + users[:4]:
        status, _, _ = await post(gw, {**SUMMARY, "user": user})
        assert status == 200
    rows = await gw.log_rows()
    arms = gw.app[GATEWAY].routers.router.policy.variants
    for row in rows:
        expected = assign(arms, row["user"]).name
        assert row["variant"] == expected
        assert row["policy"] == ("lean" if expected == "lean" else "default (simulated)")
    assert len({r["variant"] for r in rows}) == 2
    report = await get_json(gw, "/v1/taskroute/ab?since=1h")
    assert report["variants"] == ["control", "lean"]
    assert [(c["control"], c["variant"]) for c in report["comparisons"]] == [("control", "lean")]
    assert {m for c in report["comparisons"] for m in c["metrics"]} >= {
        "first_pass", "escalation", "cost_per_request", "latency"}
    for metric in report["comparisons"][0]["metrics"].values():  # 16 requests: too few
        assert not metric["significant"] and metric["why"], metric


async def test_the_shadow_policy_is_decided_and_logged_not_served(
    start_gateway: StartGateway
) -> None:
    def shadowed(policy: Policy) -> Policy:
        candidate = replace(policy, name="candidate",
                            tasks={**policy.tasks, "summarization": replace(
                                policy.tasks["summarization"], tier="strong")})
        return replace(policy, shadow=candidate)

    gw = await start_gateway(edit_policy=shadowed)
    _, headers, _ = await post(gw, SUMMARY)
    assert headers["X-Taskroute-Tier"] == "fast"          # served by the running policy
    await gw.store.flush()
    with sqlite3.connect(gw.db) as conn:
        rows = conn.execute("SELECT request_id, policy, tier FROM shadow_decisions").fetchall()
    assert rows == [(headers["X-Taskroute-Request-Id"], "candidate", "strong")]


async def test_budgets_step_down_then_refuse(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=lambda p: replace(
        p, budgets=BudgetSpec(per_user_usd=1.0, step_down_below=0.2)))
    router = gw.app[GATEWAY].routers.router
    qa = {"model": "taskroute/qa", "user": "ann",
          "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    _, headers, _ = await post(gw, qa)
    assert headers["X-Taskroute-Tier"] == "balanced"
    router.spend.settle(None, 0.85, user="ann", key=None)
    status, headers, body = await post(gw, qa, **{"X-Taskroute-Explain": "1"})
    assert status == 200 and headers["X-Taskroute-Tier"] == "fast"
    assert any("budget for user 'ann' is running low" in r for r in body["taskroute"]["reasons"])
    _, headers, _ = await post(gw, {**qa, "user": "bob"})
    assert headers["X-Taskroute-Tier"] == "balanced"       # someone else's budget is fine
    router.spend.settle(None, 0.2, user="ann", key=None)
    status, _, body = await post(gw, qa)
    assert status == 429
    assert "daily budget of $1.00 for user 'ann' is used up" in body["error"]["message"]


async def test_max_cost_caps_the_chain(gateway: RunningGateway) -> None:
    _, _, body = await post(gateway, SUMMARY, **{"X-Taskroute-Explain": "1"})
    first = body["taskroute"]["estimated_cost_usd"]      # gpt-4.1 after it costs ~5x more
    assert len(body["taskroute"]["chain"]) == 3
    first_only = {**SUMMARY, "metadata": {"max_cost_usd": first * 1.5}}
    status, _, body = await post(gateway, first_only, **{"X-Taskroute-Explain": "1"})
    assert status == 200
    assert body["taskroute"]["chain"] == ["openai/gpt-4.1-mini"]
    assert any("max_cost_usd" in r for r in body["taskroute"]["reasons"])
    status, _, body = await post(gateway, {**SUMMARY, "metadata": {"max_cost_usd": 1e-12}})
    assert status == 400 and "max_cost_usd" in body["error"]["message"]
    status, _, body = await post(gateway, {**SUMMARY, "metadata": {"max_cost_usd": "lots"}})
    assert status == 400


async def test_reload_refuses_a_bad_file_and_keeps_the_running_policy(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    # first aimed at nothing (port 1), so only a reload can make requests succeed
    path.write_text(simulated_policy_text(default_policy_text(), "http://127.0.0.1:1"),
                    encoding="utf-8")
    gw = await start_gateway(GatewaySettings(extra={"admin_keys": ["sesame"]}),
                             edit_policy=lambda _: load_policy(path))
    admin = {"X-Taskroute-Admin-Key": "sesame"}   # admin may do all, model calls too
    status, _, _ = await post(gw, SUMMARY, **admin)
    assert status == 502
    path.write_text(simulated_policy_text(default_policy_text(), gw.upstream.url),
                    encoding="utf-8")
    status, _, body = await gw.request("POST", "/v1/taskroute/reload",
                                       headers={"X-Taskroute-Admin-Key": "wrong"})
    assert status == 401                                  # a key it does not know
    status, _, body = await gw.request("POST", "/v1/taskroute/reload", headers=admin)
    assert status == 200, body
    status, _, _ = await post(gw, SUMMARY, **admin)
    assert status == 200                                  # the reloaded policy is serving
    path.write_text("name: broken\nmodels: {}\n", encoding="utf-8")
    status, _, body = await gw.request("POST", "/v1/taskroute/reload", headers=admin)
    assert status == 400 and b"the running policy stays" in body
    status, _, _ = await post(gw, SUMMARY, **admin)
    assert status == 200                                  # and it still is


def test_the_quality_endpoints_read_the_store_create_app_was_given(tmp_path: Path) -> None:
    policy = load_default_policy()
    memory = MemoryStore()                       # writes only: no stats, no feedback
    app = create_app(Router(policy, classifier=False, store=memory))
    paths = {r.canonical for r in app.router.resources()}
    assert app[GATEWAY].store is memory and QUALITY not in app
    assert "/v1/taskroute/stats" not in paths and "/v1/taskroute/feedback" not in paths
    sqlite_store = SqliteStore(tmp_path / "log.db")
    try:
        app = create_app(Router(policy, classifier=False, store=sqlite_store))
        assert app[QUALITY].reader is sqlite_store and app[GATEWAY].store is sqlite_store
        assert app[GATEWAY].routers.router.store is sqlite_store      # no wrapper between
        assert {"/v1/taskroute/stats", "/v1/taskroute/feedback"} <= {
            r.canonical for r in app.router.resources()}
    finally:
        sqlite_store.close()


async def test_the_time_series_fills_its_window_and_refuses_a_step_it_cannot_give(
    gateway: RunningGateway,
) -> None:
    await post(gateway, SUMMARY)
    await gateway.store.flush()
    minutes = await get_json(gateway, "/v1/taskroute/timeseries?since=30m")
    assert minutes["step"] == "minute" and len(minutes["points"]) in (30, 31)
    assert sum(p["requests"] for p in minutes["points"]) == 1
    assert [p["t"] for p in minutes["points"]] == list(range(
        minutes["start"], minutes["end"] + 60, 60))        # every minute, empty ones as zeros
    hours = await get_json(gateway, "/v1/taskroute/timeseries?since=7d")
    assert hours["step"] == "hour" and len(hours["points"]) in (168, 169)
    assert hours["saved_usd"] == pytest.approx(hours["baseline_usd"] - hours["cost_usd"])
    for query, words in (("since=7d&step=minute", "kept for the last 48 hours"),
                         ("step=weekly", "'step' is minute, hour or auto")):
        status, _, raw = await gateway.request("GET", f"/v1/taskroute/timeseries?{query}")
        error = json.loads(raw)["error"]
        assert status == 400 and words in error["message"] and error["param"] == "step"
