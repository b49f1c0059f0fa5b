"""A real `taskroute serve` process with the test plugin on its PYTHONPATH answers the official
OpenAI SDK through the plugin's provider kind, gate and classifier: installing a distribution
is the whole integration, taskroute itself unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

import aiohttp
import openai
import pytest

from taskroute.providers.simulated import SimulatedUpstream
from tests.gateway.test_shutdown import ROOT, free_port
from tests.plugins.conftest import KEY, KEY_ENV, plugin_policy


async def wait_healthy(proc: asyncio.subprocess.Process, url: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        for _ in range(300):
            if proc.returncode is not None:
                break
            try:
                async with client.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("taskroute serve never became healthy")


@pytest.mark.timeout(60)
async def test_serve_answers_through_the_plugin_provider_and_gate(
    plugin_dir: Path, tmp_path: Path
) -> None:
    async with SimulatedUpstream(api_key=KEY) as upstream:
        policy = tmp_path / "policy.yaml"
        policy.write_text(plugin_policy(upstream.base_url), encoding="utf-8")
        db, port = tmp_path / "log.db", free_port()
        url = f"http://127.0.0.1:{port}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskroute", "serve", "--policy", str(policy),
            "--port", str(port), "--store", f"sqlite:{db}", "--sessions", "memory",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, KEY_ENV: KEY,
                 "PYTHONPATH": os.pathsep.join((str(ROOT), str(plugin_dir)))},
        )
        try:
            await wait_healthy(proc, url)
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0,
                                          timeout=10) as client:
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto",
                    messages=[{"role": "user", "content": "Pull the dates out of this memo."}],
                )
        finally:
            proc.terminate()
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 20)
            except TimeoutError:
                proc.kill()
                out, _ = await proc.communicate()
    log = out.decode()
    completion = raw.parse()
    assert (completion.choices[0].message.content or "").startswith("large answers:"), log[-2000:]
    assert raw.headers["X-Taskroute-Task"] == "extraction"        # the plugin's classifier
    assert raw.headers["X-Taskroute-Model"] == "vendor/large"     # after the plugin's gate
    assert raw.headers["X-Taskroute-Escalated"] == "true"
    sent = upstream.last_headers["small"]
    assert sent["x-api-key"] == KEY and "Authorization" not in sent  # the plugin's wire
    with sqlite3.connect(db) as conn:                              # logged via --store
        verdicts = [json.loads(v) for (v,) in conn.execute(
            "SELECT verdicts FROM attempts ORDER BY seq")]
    assert [[v["gate"] for v in vs] for vs in verdicts] == [["mentions"], ["mentions"]]
    assert "sessions: memory" in log
