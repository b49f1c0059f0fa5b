"""Done when: with two `taskroute serve` replicas on one Postgres log and one Redis, a breaker
that trips on one is one row in the log and one trip on each — the replica that tripped lists
it as its own, the other as news heard — and a replica started afterwards, which both reads the
row and finds the open breaker in Redis, lists it once, with the reason the first one wrote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from taskroute.providers.simulated import SimulatedUpstream
from tests.servers import PostgresCluster
from tests.shared.replicas import Replica, replicas, start_replica
from tests.shared.test_replicas import ADMIN, FAST, KEYS, READ, SALT, chat, policy_text


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


async def breakers(client: aiohttp.ClientSession, replica: Replica) -> Any:
    async with client.get(replica.url + "/v1/taskroute/breakers",
                          headers={"Authorization": f"Bearer {READ}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def heard_of(client: aiohttp.ClientSession, replica: Replica, deployment: str) -> Any:
    """The replica's report once shared state has told it `deployment`'s breaker is open."""
    for _ in range(300):
        report = await breakers(client, replica)
        rows = {r["deployment"]: r for r in report["breakers"]}
        if rows[deployment]["open_by_replica_s"] > 0 and report["trips"]:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"{replica.url} never heard that {deployment} tripped")


async def test_a_trip_is_one_row_and_one_trip_on_every_replica_even_one_started_later(
    upstream: SimulatedUpstream, redis_url: str, tmp_path: Path,
    postgres_cluster: PostgresCluster,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(upstream.url), encoding="utf-8")  # trips on 1 failure, 60 s
    database = postgres_cluster.new_database()
    args = ["--policy", str(policy), "--db", database, "--redis", redis_url]
    env = {"TASKROUTE_API_KEYS": ",".join(KEYS.values()), "TASKROUTE_ADMIN_KEYS": ADMIN,
           "TASKROUTE_READ_KEYS": READ, "TASKROUTE_KEY_SALT": SALT}
    deployment = f"openai/{FAST}"
    async with replicas(2, args, env, tmp_path) as (a, b), aiohttp.ClientSession() as client:
        upstream.fail(FAST, 500)
        status, headers = await chat(client, a, KEYS["break"])
        assert status == 200 and headers["X-Taskroute-Model"] != deployment
        (tripped,) = (await breakers(client, a))["trips"]
        assert (tripped["deployment"], tripped["by"]) == (deployment, "here")
        assert "500" in tripped["reason"] and tripped["replica"]

        (heard,) = (await heard_of(client, b, deployment))["trips"]
        assert (heard["deployment"], heard["by"]) == (deployment, "replica")

        c = await start_replica(args, env, tmp_path / "replica-later.log")
        try:
            report = await heard_of(client, c, deployment)
            (seen,) = report["trips"]
            assert {k: seen[k] for k in ("id", "reason", "opened_at", "replica")} == {
                k: tripped[k] for k in ("id", "reason", "opened_at", "replica")}
            assert seen["by"] == "replica" and report["persisted"] is True
        finally:
            await c.stop()
    name = database.rsplit("/", 1)[1]
    assert postgres_cluster.psql(name, "SELECT deployment, replica FROM breaker_trips"
                                 ).splitlines() == [f"{deployment}|{tripped['replica']}"]
