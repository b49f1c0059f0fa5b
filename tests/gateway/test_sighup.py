"""SIGHUP makes a running `taskroute serve` process reload its policy file; a bad file is
refused (logged) and the running policy keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from taskroute.demo.policy import simulated_policy_text
from taskroute.policy.loader import default_policy_text
from taskroute.providers.simulated import SimulatedUpstream
from tests.gateway.test_shutdown import ROOT, free_port

BODY = {"model": "taskroute/summarization",
        "messages": [{"role": "user", "content": "Summarize: the cat sat on the mat."}]}


async def status_of(client: aiohttp.ClientSession, url: str) -> int:
    async with client.post(url + "/v1/chat/completions", json=BODY) as resp:
        await resp.read()
        return resp.status


async def wait_for_status(client: aiohttp.ClientSession, url: str, want: int) -> None:
    for _ in range(100):
        if await status_of(client, url) == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never answered {want}")


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
async def test_sighup_reloads_the_policy_and_refuses_a_bad_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    # first aimed at nothing (port 1): only a reload can make requests succeed
    policy.write_text(simulated_policy_text(default_policy_text(), "http://127.0.0.1:1"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskroute", "serve", "--policy", str(policy), "--port", str(port),
        "--db", str(tmp_path / "log.db"), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TASKROUTE_DRAIN_S": "0.3"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with SimulatedUpstream() as upstream, aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10)
        ) as client:
            for _ in range(200):
                try:
                    async with client.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            assert await status_of(client, url) == 502
            policy.write_text(simulated_policy_text(default_policy_text(), upstream.url))
            proc.send_signal(signal.SIGHUP)
            await wait_for_status(client, url, 200)           # the new file is serving
            policy.write_text("name: broken\nmodels: {}\n")
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            assert proc.returncode is None                    # still running
            assert await status_of(client, url) == 200        # on the policy it had
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert "SIGHUP" in text and "running policy stays" in text, text[-2000:]
