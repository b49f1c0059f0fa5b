"""Done when: two `taskroute serve` processes against one Postgres log and one Redis keep one
set of books — a budget and a rate limit hold across both, a session's escalations on one move
its next request on the other, a breaker opened by one is seen by the other, feedback on a
request logged by one is accepted by the other, stats are the same from either, and one reload
reaches both. (Each of these fails with two processes on their own memory.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from taskroute.demo.policy import simulated_policy_text
from taskroute.providers.simulated import SimulatedUpstream
from tests.servers import PostgresCluster
from tests.shared.replicas import Replica, replicas

RPM = 12
PER_USER_USD = 0.0004
KEYS = {"rate": "k-rate", "sess": "k-sess", "break": "k-break", "misc": "k-misc",
        **{f"budget{i}": f"k-budget{i}" for i in range(6)}}
ADMIN = "admin-key"
READ = "read-key"         # stats need a read (or admin) key; a user key only calls models
SALT = "replicas-share-one-fingerprint-secret"  # so a key's fingerprint is one on both
FAST = "gpt-4.1-mini"     # the chat task's first pick in the default policy (tier fast)


def policy_text(upstream_url: str, name: str = "replicated") -> str:
    from taskroute.policy.loader import default_policy_text

    text = simulated_policy_text(default_policy_text(), upstream_url)
    text = re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.M)
    text = text.replace("  retries: 1 ", "  retries: 0 ", 1).replace(
        "circuit breaker: {failures: 5, cool down: 30s}",
        "circuit breaker: {failures: 1, cool down: 60s}", 1)
    return text + f"\nbudgets:\n  per user: {PER_USER_USD}\n"


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


@pytest.fixture
async def two(upstream: SimulatedUpstream, redis_url: str, tmp_path: Path,
              postgres_cluster: PostgresCluster) -> AsyncIterator[tuple[Replica, Replica, Path]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(upstream.url), encoding="utf-8")
    args = ["--policy", str(policy), "--db", postgres_cluster.new_database(), "--redis",
            redis_url, "--rate-limit", str(RPM)]
    env = {"TASKROUTE_API_KEYS": ",".join(KEYS.values()), "TASKROUTE_ADMIN_KEYS": ADMIN,
           "TASKROUTE_READ_KEYS": READ, "TASKROUTE_KEY_SALT": SALT}
    async with replicas(2, args, env, tmp_path) as (a, b):
        yield a, b, policy


async def chat(client: aiohttp.ClientSession, replica: Replica, key: str,
               **metadata: str) -> tuple[int, dict[str, str]]:
    body: dict[str, Any] = {"model": "auto",
                            "messages": [{"role": "user", "content": "hello, how are you?"}]}
    if metadata:
        body["metadata"] = metadata
    async with client.post(replica.url + "/v1/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {key}"}) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


async def test_two_replicas_keep_one_set_of_books(
        two: tuple[Replica, Replica, Path], upstream: SimulatedUpstream) -> None:
    a, b, policy = two
    async with aiohttp.ClientSession() as client:
        # a rate limit across both: RPM in all, not RPM each
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = [(await chat(client, (a, b)[i % 2], KEYS["rate"]))[0] for i in range(3 * RPM)]
        refills = int((loop.time() - started) * RPM / 60)
        assert RPM <= statuses.count(200) <= RPM + refills, statuses
        assert set(statuses) == {200, 429}

        # a budget across both, spent concurrently: at most one request's cost over
        async def spend(i: int) -> tuple[int, float]:
            status, headers = await chat(client, (a, b)[i % 2], KEYS[f"budget{i % 6}"],
                                         user_id="u-budget")
            return status, float(headers.get("X-Taskroute-Cost-USD", 0))

        spent: list[tuple[int, float]] = []
        for _ in range(6):  # rounds of 10 at once, until refused
            spent += await asyncio.gather(*(spend(i) for i in range(10)))
            if any(status == 429 for status, _ in spent):
                break
        costs = [cost for status, cost in spent if status == 200]
        assert any(status == 429 for status, _ in spent)
        assert sum(costs) <= PER_USER_USD + max(costs)

        # a session's escalations on A move its next request on B
        upstream.refuse(FAST, times=2)
        for _ in range(2):
            _, headers = await chat(client, a, KEYS["sess"], session_id="s-1")
            assert headers["X-Taskroute-Escalated"] == "true"
        await asyncio.sleep(0.3)  # the escalations are written after the answers
        _, other = await chat(client, b, KEYS["sess"], session_id="s-2")
        _, same = await chat(client, b, KEYS["sess"], session_id="s-1")
        assert other["X-Taskroute-Tier"] == "fast"
        assert same["X-Taskroute-Tier"] == "balanced"

        # a breaker opened on A is open on B: B does not call the failing deployment
        upstream.fail(FAST, 500)
        status, headers = await chat(client, a, KEYS["break"])
        assert status == 200 and headers["X-Taskroute-Model"] != f"openai/{FAST}"
        calls = upstream.requests[FAST]
        await asyncio.sleep(0.3)  # the news goes out on the event channel
        status, headers = await chat(client, b, KEYS["break"])
        assert status == 200
        assert upstream.requests[FAST] == calls
        upstream.answer_normally(FAST)

        # feedback on a request A logged, given to B
        _, headers = await chat(client, a, KEYS["misc"])
        async with client.post(b.url + "/v1/taskroute/feedback",
                               json={"request_id": headers["X-Taskroute-Request-Id"],
                                     "thumbs": "up"},
                               headers={"Authorization": f"Bearer {KEYS['misc']}"}) as resp:
            assert resp.status == 201, await resp.text()

        # the same stats from either
        async def stats(replica: Replica) -> Any:
            async with client.get(replica.url + "/v1/taskroute/stats",
                                  headers={"Authorization": f"Bearer {READ}"}) as resp:
                assert resp.status == 200, await resp.text()
                report = await resp.json()
            # when it was asked and how long it took differ; the figures may not
            return {k: v for k, v in report.items() if k not in ("since", "until", "query_ms")}

        from_a, from_b = await stats(a), await stats(b)
        assert from_a["total"]["requests"] >= RPM + len(costs)
        assert from_a == from_b

        # one reload, asked of A, reaches B
        policy.write_text(policy_text(upstream.url, name="reloaded"), encoding="utf-8")
        async with client.post(a.url + "/v1/taskroute/reload",
                               headers={"X-Taskroute-Admin-Key": ADMIN,
                                        "Authorization": f"Bearer {KEYS['misc']}"}) as resp:
            assert resp.status == 200, await resp.text()
        names = []
        for _ in range(50):
            async with client.get(b.url + "/readyz") as resp:  # open: no key needed
                names.append((await resp.json())["policy"])
            if names[-1] == "reloaded":
                break
            await asyncio.sleep(0.1)
        assert names[-1] == "reloaded"
