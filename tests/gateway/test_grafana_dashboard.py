"""docs/grafana-taskroute.json charts what `/metrics` really exports: every PromQL query's
metric names, and the labels it filters and groups by, are found in a live gateway's scrape
after traffic that makes each metric appear (a hedge, a race, an opened breaker, a gate's
rejection, budgets)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from taskroute.policy.model import BudgetSpec, Policy
from tests.gateway.conftest import StartGateway
from tests.gateway.test_metrics_routing import ask, calling, racing_chat

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-taskroute.json"
METRIC = re.compile(r"\b(taskroute_[a-z0-9_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append(target["expr"])
        for inner in panel.get("panels", []):  # a collapsed row keeps its panels inside
            found += [t["expr"] for t in inner.get("targets", [])]
    return found


def test_the_dashboard_is_grafana_json_with_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] == "taskroute" and dashboard["panels"]
    assert len(queries(dashboard)) >= 20
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


async def test_every_query_names_a_metric_and_labels_the_gateway_exports(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=_with_budgets_and_all)
    up = gateway.upstream
    for _ in range(3):                          # first-token times: the p95 a hedge needs
        await ask(gateway, user="alice")
    up.answer_slowly("gpt-4.1-mini", 2.0, times=1)
    await ask(gateway)                          # hedged, and the hedge wins
    up.answer_slowly("gpt-4.1", 1.0)
    await ask(gateway, "taskroute/chat")        # raced: the cheap side wins
    up.answer_slowly("gpt-4.1", 0.3)
    up.refuse("gpt-4.1-mini", times=1)
    await ask(gateway, "auto")                  # a gate rejects the cheap side: strong serves
    up.fail("gpt-4.1-mini", 503)
    await ask(gateway)                          # two failures open the breaker; failover
    await gateway.store.flush()
    status, _, body = await gateway.request("GET", "/metrics")
    assert status == 200
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    missing = []
    for expr in queries(dashboard):
        names = [(m.group(1), m.group(2) or "") for m in METRIC.finditer(expr)]
        assert names, f"no taskroute metric in {expr!r}"
        grouped = {g.strip() for part in GROUPING.findall(expr) for g in part.split(",")} - {
            "le", ""}
        for name, matchers in names:
            if name not in labels:
                missing.append(f"{name} (in {expr!r})")
                continue
            used = set(MATCHER.findall(matchers)) | grouped
            unknown = used - labels[name] - {"le"}
            if unknown and not any(u in labels[n] for n, _ in names for u in unknown):
                missing.append(f"labels {sorted(unknown)} of {name} (in {expr!r})")
    assert not missing, missing


def _with_budgets_and_all(policy: Policy) -> Policy:
    """A raced chat task, hedging from 3 samples, breakers opening at 2 failures, budgets."""
    policy = calling(racing_chat(policy), hedge=True, hedge_min_samples=3, breaker_failures=2)
    return dataclasses.replace(policy, budgets=BudgetSpec(per_user_usd=1.0, per_day_usd=5.0))
