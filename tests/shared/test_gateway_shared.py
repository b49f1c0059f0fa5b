"""The gateway on Redis-backed shared state: streams are admitted by the shared budget, a
stopped Redis is refused with a clear 503 when the policy fails closed and served (and counted
in /metrics) when it fails open, and a hung Redis costs a bounded wait, not a hang."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from taskroute.demo.policy import simulated_policy
from taskroute.gateway.app import create_app
from taskroute.gateway.server import listening_url
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.loader import load_default_policy
from taskroute.policy.model import BudgetSpec
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from taskroute.shared.base import Lookup
from taskroute.shared.redis_state import RedisState
from taskroute.store.sqlite import SqliteStore
from tests.servers import RedisServer

Start = Callable[[str], Awaitable[tuple[str, RedisState]]]
CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello, how are you?"}]}


@pytest.fixture
async def start(own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []
    async with SimulatedUpstream() as upstream:
        async def begin(when_down: str) -> tuple[str, RedisState]:
            policy = dataclasses.replace(
                simulated_policy(load_default_policy(), upstream),
                budgets=BudgetSpec(per_day_usd=100.0), shared_state_down=when_down)
            shared = RedisState(own_redis.url)
            router = Router(policy, classifier=False, shared=shared,
                            store=SqliteStore(tmp_path / f"log{len(runners)}.db"))
            runner = web.AppRunner(create_app(router, GatewaySettings(rate_limit_rpm=10_000)),
                                   handler_cancellation=True)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return listening_url(site, "127.0.0.1"), shared

        yield begin
        for runner in runners:
            await runner.cleanup()


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as client, client.post(
            url + "/v1/chat/completions", json=body) as resp:
        raw = await resp.read()
        return resp.status, raw, time.perf_counter() - t0


async def test_a_stream_is_admitted_and_settled_by_the_shared_budget(start: Start) -> None:
    url, shared = await start("fail open")
    status, raw, _ = await post(url, {**CHAT, "stream": True})
    assert status == 200 and raw.rstrip().endswith(b"data: [DONE]")
    await shared.drain()
    spent = (await shared.prefetch(Lookup(scopes=(("day", ""),)))).snapshot.spent
    assert spent[("day", "")] > 0


async def test_failing_closed_refuses_with_503_while_redis_is_down(
        start: Start, own_redis: RedisServer) -> None:
    url, _ = await start("fail closed")
    assert (await post(url, CHAT))[0] == 200
    await asyncio.to_thread(own_redis.stop)
    status, raw, _ = await post(url, CHAT)
    assert status == 503
    assert b"fails closed" in raw and b"shared state" in raw
    await asyncio.to_thread(own_redis.start)
    await asyncio.sleep(1.1)  # Redis is asked again a second after it failed
    assert (await post(url, CHAT))[0] == 200


async def test_failing_open_serves_while_redis_is_down_and_says_so_in_metrics(
        start: Start, own_redis: RedisServer) -> None:
    url, _ = await start("fail open")
    await asyncio.to_thread(own_redis.stop)
    assert [(await post(url, CHAT))[0] for _ in range(3)] == [200] * 3
    async with aiohttp.ClientSession() as client, client.get(url + "/metrics") as resp:
        metrics = await resp.text()
    counted = [float(line.split()[1]) for line in metrics.splitlines()
               if line.startswith("taskroute_shared_state_fallbacks ")]
    assert counted and counted[0] >= 3  # each request's steps that fell back


async def test_a_hung_redis_costs_one_bounded_wait(start: Start, own_redis: RedisServer) -> None:
    url, shared = await start("fail open")
    assert (await post(url, CHAT))[0] == 200
    own_redis.pause()
    try:
        waits = [await post(url, CHAT) for _ in range(5)]
    finally:
        own_redis.resume()
    assert [status for status, _, _ in waits] == [200] * 5
    assert max(seconds for _, _, seconds in waits) < 2.0  # a 0.25 s timeout, not a hang
    assert shared.fallbacks >= 5


async def test_a_breaker_another_replica_opened_shows_as_its_trip(
    start: Start, own_redis: RedisServer,
) -> None:
    url, _ = await start("fail open")
    other = RedisState(own_redis.url)   # another replica, on the same Redis
    await other.start()
    try:
        other.breakers.opened("openai/gpt-4.1", 45.0)
        report: dict[str, Any] = {}
        async with aiohttp.ClientSession() as client:
            for _ in range(300):                 # pub/sub delivery takes a moment
                async with client.get(url + "/v1/taskroute/breakers") as resp:
                    assert resp.status == 200
                    report = await resp.json()
                if report["trips"]:
                    break
                await asyncio.sleep(0.02)
        (trip,) = report["trips"]
        assert (trip["deployment"], trip["by"]) == ("openai/gpt-4.1", "replica")
        assert 40 < trip["retry_at"] - trip["opened_at"] <= 45
        row = {b["deployment"]: b for b in report["breakers"]}["openai/gpt-4.1"]
        assert row["state"] == "open" and 40 < row["open_by_replica_s"] <= 45
        assert report["shared"] is True and report["open"] == 1
    finally:
        await other.aclose()
