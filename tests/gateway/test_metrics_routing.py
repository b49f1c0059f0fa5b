"""`/metrics` shows the routing layer at work, each driven for real through a gateway in front
of the SIMULATED upstream: a breaker opened by a failing deployment, a race's winner and the
cancelled side, a hedge fired and won, reloads done and refused, the budgets' headroom, and
the log writer's queue and commit times."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import openai
from prometheus_client.parser import text_string_to_metric_families

from taskroute.policy.model import BudgetSpec, Policy, RaceSpec
from taskroute.providers.simulated import SimulatedUpstream
from tests.gateway.conftest import RunningGateway, StartGateway
from tests.gateway.test_reload import ADMIN, reloadable

PROMPT = "[difficulty=0.1] hello there, how are you today?"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(gateway: RunningGateway, headers: dict[str, str] | None = None) -> Samples:
    status, _, body = await gateway.request("GET", "/metrics", headers=headers or {})
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def ask(gateway: RunningGateway, model: str = "openai/gpt-4.1-mini",
              user: str | None = None) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=20) as client:
        extra = {"user": user} if user else {}
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=20,
            **extra)  # type: ignore[call-overload]


def calling(policy: Policy, **changes: Any) -> Policy:
    return dataclasses.replace(policy, calling=dataclasses.replace(policy.calling, **changes))


async def test_a_failing_deployment_shows_its_breaker_open(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(edit_policy=lambda p: calling(p, breaker_failures=2))
    await ask(gateway)
    before = await scrape(gateway)
    assert value(before, "taskroute_breaker_state", deployment="openai/gpt-4.1-mini",
                 state="closed") == 1.0
    gateway.upstream.fail("gpt-4.1-mini", 503)   # the try and its retry: two failures
    await ask(gateway)                            # answered by the failover deployment
    after = await scrape(gateway)
    mini = {state: value(after, "taskroute_breaker_state", deployment="openai/gpt-4.1-mini",
                         state=state) for state in ("closed", "half_open", "open")}
    assert mini == {"closed": 0.0, "half_open": 0.0, "open": 1.0}
    assert value(after, "taskroute_breaker_state", deployment="anthropic/claude-haiku-4-5",
                 state="closed") == 1.0


def racing_chat(policy: Policy) -> Policy:
    chat = dataclasses.replace(policy.tasks["chat"], race=RaceSpec("openai/gpt-4.1", 0.9))
    return dataclasses.replace(policy, tasks={**policy.tasks, "chat": chat})


async def test_a_race_counts_its_winner_and_the_cancelled_side(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=racing_chat)
    gateway.upstream.answer_slowly("gpt-4.1", 1.0)   # the strong side is still out: cancelled
    await ask(gateway, "taskroute/chat")
    samples = await scrape(gateway)
    assert value(samples, "taskroute_races_total", task="chat", winner="cheap") == 1.0
    assert value(samples, "taskroute_race_cancellations_total", task="chat",
                 side="strong") == 1.0
    assert value(samples, "taskroute_race_cancellations_total", task="chat",
                 side="cheap") is None


async def test_a_hedge_is_counted_when_fired_and_when_it_wins(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=lambda p: calling(
        p, hedge=True, hedge_min_samples=3, hedge_quantile=0.95))
    for _ in range(3):   # first-token times for the deployment's p95
        await ask(gateway)
    assert value(await scrape(gateway), "taskroute_hedges_total", task="chat",
                 model="openai/gpt-4.1-mini") is None
    gateway.upstream.answer_slowly("gpt-4.1-mini", 2.0, times=1)   # slower than its p95
    await ask(gateway)
    samples = await scrape(gateway)
    assert value(samples, "taskroute_hedges_total", task="chat",
                 model="openai/gpt-4.1-mini") == 1.0
    assert value(samples, "taskroute_hedges_won_total", task="chat",
                 model="openai/gpt-4.1-mini") == 1.0


async def test_reloads_are_counted_ok_and_refused(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream, tmp_path: Path,
) -> None:
    gateway = await reloadable(start_gateway, simulated_upstream, tmp_path)
    assert value(await scrape(gateway, ADMIN), "taskroute_reloads_total", outcome="ok") == 0.0
    status, _, _ = await gateway.request("POST", "/v1/taskroute/reload", headers=ADMIN)
    assert status == 200
    (tmp_path / "policy.yaml").write_text("name: broken\nmodels: {", encoding="utf-8")
    status, _, _ = await gateway.request("POST", "/v1/taskroute/reload", headers=ADMIN)
    assert status == 400
    samples = await scrape(gateway, ADMIN)
    assert value(samples, "taskroute_reloads_total", outcome="ok") == 1.0
    assert value(samples, "taskroute_reloads_total", outcome="refused") == 1.0


async def test_budget_headroom_falls_per_scope_as_requests_spend(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=lambda p: dataclasses.replace(
        p, budgets=BudgetSpec(per_user_usd=0.5, per_day_usd=2.0)))
    samples = await scrape(gateway)
    assert value(samples, "taskroute_budget_headroom_usd", scope="day", id="") == 2.0
    assert value(samples, "taskroute_budget_limit_usd", scope="day", id="") == 2.0
    await ask(gateway, user="alice")
    samples = await scrape(gateway)
    day = value(samples, "taskroute_budget_headroom_usd", scope="day", id="")
    alice = value(samples, "taskroute_budget_headroom_usd", scope="user", id="alice")
    assert day is not None and 0 < day < 2.0
    assert alice is not None and 0 < alice < 0.5
    assert abs((2.0 - day) - (0.5 - alice)) < 1e-9   # the same request's cost in both


async def test_the_log_writer_shows_its_queue_and_commit_times(gateway: RunningGateway) -> None:
    await ask(gateway)
    await gateway.store.flush()
    samples = await scrape(gateway)
    assert value(samples, "taskroute_log_queue_depth") == 0.0
    commits = value(samples, "taskroute_log_write_seconds_count")
    assert commits is not None and commits >= 1
    total = value(samples, "taskroute_log_write_seconds_sum")
    assert total is not None and total > 0
