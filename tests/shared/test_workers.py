"""`taskroute serve --workers 2` on one port with SQLite alone: the kernel spreads connections
over both workers, and a rate limit and a budget hold across them (their counters in one
SQLite file), as they would across Redis-backed replicas."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from taskroute.providers.simulated import SimulatedUpstream
from tests.servers import free_port
from tests.shared.replicas import REPO
from tests.shared.test_replicas import PER_USER_USD, policy_text

RPM = 8


@dataclass
class Workers:
    url: str
    upstream: SimulatedUpstream
    policy: Path
    proc: asyncio.subprocess.Process

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SO_REUSEPORT")


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    async with SimulatedUpstream() as upstream:
        policy = tmp_path / "policy.yaml"
        policy.write_text(policy_text(upstream.url), encoding="utf-8")
        port = free_port()
        out = (tmp_path / "serve.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskroute", "serve", "--workers", "2", "--port", str(port),
            "--policy", str(policy), "--db", str(tmp_path / "log.db"),
            "--rate-limit", str(RPM), stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO),
                 "TASKROUTE_API_KEYS": "k-rate,k-b1,k-b2,k-b3,k-b4,k-b5"})
        out.close()
        url = f"http://127.0.0.1:{port}"
        try:
            await _until_both_answer(url, proc, tmp_path / "serve.log")
            yield Workers(url, upstream, policy, proc)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _until_both_answer(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Both workers up: /readyz, each time on a new connection, answered by two pids."""
    pids: set[int] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as c:
        for _ in range(300):  # 30 s at most: inside the test timeout, so the log is shown
            if proc.returncode is not None:
                break
            try:
                async with c.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        pids.add((await resp.json())["pid"])
            except (aiohttp.ClientError, OSError):
                pass
            if len(pids) == 2:
                return
            await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text, errors="replace")
    raise AssertionError(f"two workers did not answer ({pids}):\n{output}")


async def post(client: aiohttp.ClientSession, url: str, key: str,
               **metadata: str) -> tuple[int, float]:
    body: dict[str, Any] = {"model": "auto", "metadata": metadata,
                            "messages": [{"role": "user", "content": "hello there"}]}
    async with client.post(url + "/v1/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {key}"}) as resp:
        await resp.read()
        return resp.status, float(resp.headers.get("X-Taskroute-Cost-USD", 0))


async def test_a_rate_limit_and_a_budget_hold_across_workers(workers: Workers) -> None:
    url = workers.url
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as c:
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = [(await post(c, url, "k-rate"))[0] for _ in range(3 * RPM)]
        refills = int((loop.time() - started) * RPM / 60)
        assert RPM <= statuses.count(200) <= RPM + refills, statuses

        results: list[tuple[int, float]] = []
        for _ in range(8):
            results += await asyncio.gather(*(post(c, url, f"k-b{i % 5 + 1}", user_id="u-w")
                                              for i in range(10)))
            if any(status == 429 for status, _ in results):
                break
        costs = [cost for status, cost in results if status == 200]
        assert any(status == 429 for status, _ in results)
        assert sum(costs) <= PER_USER_USD + max(costs)


async def test_one_sighup_reloads_every_worker(workers: Workers) -> None:
    workers.policy.write_text(policy_text(workers.upstream.url, name="reloaded"),
                              encoding="utf-8")
    workers.proc.send_signal(signal.SIGHUP)
    seen: dict[int, str] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as c:
        for _ in range(100):  # 10 s at most
            async with c.get(workers.url + "/readyz") as resp:
                body = await resp.json()
            seen[body["pid"]] = body["policy"]
            if len(seen) == 2 and set(seen.values()) == {"reloaded"}:
                break
            await asyncio.sleep(0.1)
    assert len(seen) == 2 and set(seen.values()) == {"reloaded"}, seen
