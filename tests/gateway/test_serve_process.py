"""A real `taskroute serve` process: on SIGTERM `/readyz` turns 503 at once while requests are
still served for the drain period, after which new connections are refused; what a hostile
client sends leaves no traceback in its log; a reload is logged and counted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from taskroute.demo.policy import simulated_policy_text
from taskroute.policy.loader import default_policy_text
from taskroute.providers.simulated import SimulatedUpstream
from tests.gateway.test_shutdown import ROOT, free_port

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}


@asynccontextmanager
async def serving(tmp_path: Path, *args: str, **env: str
                  ) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    async with SimulatedUpstream() as upstream:
        policy = tmp_path / "policy.yaml"
        policy.write_text(simulated_policy_text(default_policy_text(), upstream.url))
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskroute", "serve", "--policy", str(policy),
            "--port", str(port), "--db", str(tmp_path / "log.db"), *args, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as client:
                for _ in range(200):
                    try:
                        async with client.get(url + "/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
            yield proc, url
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def get_status(url: str, path: str = "/readyz") -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client, \
            client.get(url + path) as resp:
        await resp.read()
        return resp.status


@pytest.mark.timeout(60)
async def test_sigterm_turns_readyz_503_at_once_serves_through_the_drain_then_refuses(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, "--drain", "1.5") as (proc, url):
        assert await get_status(url) == 200
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        first_503 = None
        while time.monotonic() - signalled < 1.0:
            if await get_status(url) == 503:
                first_503 = time.monotonic() - signalled
                break
        assert first_503 is not None and first_503 < 0.5
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as client, client.post(
                url + "/v1/chat/completions", json=CHAT) as resp:  # inside the window
            assert resp.status == 200
        refused_at = None
        while time.monotonic() - signalled < 10:
            try:
                await get_status(url, "/healthz")
            except aiohttp.ClientConnectionError:
                refused_at = time.monotonic() - signalled
                break
            await asyncio.sleep(0.02)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode()
    assert refused_at is not None and 1.4 <= refused_at < 3.0
    print(f"drain: /readyz 503 after {first_503 * 1000:.0f} ms; new connections refused "
          f"after {refused_at:.2f} s (drain 1.5 s)")
    assert "still serving for 1.5 s" in log and "no longer accepting" in log


@pytest.mark.timeout(60)
async def test_drain_zero_stops_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, "--drain", "0") as (proc, _):
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert time.monotonic() - start < 1.5


async def raw(url: str, data: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def post(path: str, body: bytes, *headers: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n").encode() + b"".join(h + b"\r\n" for h in headers) + (
        b"\r\n" + body)


@pytest.mark.timeout(60)
async def test_hostile_requests_leave_no_traceback_in_the_server_log(tmp_path: Path) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    async with serving(tmp_path, "--drain", "0", TASKROUTE_API_KEYS="k1",
                       TASKROUTE_ADMIN_KEYS="adm") as (proc, url):
        answers = [
            await raw(url, post("/v1/chat/completions", b'{"tools":' + deep + b"}",
                                b"Authorization: Bearer k1")),
            await raw(url, post("/v1/messages", b'{"messages":' + deep + b"}",
                                b"x-api-key: k1")),
            await raw(url, post("/v1/taskroute/feedback", b'{"text":' + deep + b"}",
                                b"Authorization: Bearer k1")),
            await raw(url, post("/v1/chat/completions", b"{}", b"Authorization: Bearer \xff")),
            await raw(url, post("/v1/messages", b"{}", b"x-api-key: k\xfe1")),
            await raw(url, post("/v1/taskroute/reload", b"", b"Authorization: Bearer k1",
                                b"X-Taskroute-Admin-Key: \xff")),
            await raw(url, post("/v1/messages", b"{}", b"X-Long: " + b"a" * 9000)),
        ]
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode()
    statuses = [int(a.split(b" ", 2)[1]) for a in answers]
    assert statuses == [400, 400, 400, 400, 400, 400, 431], answers
    assert all(b"Content-Type: application/json" in a for a in answers)
    assert b'"type":"error"' in answers[1] and b'"type":"error"' in answers[6]  # Anthropic's
    assert "Traceback" not in log and "ERROR" not in log, log


ADMIN = {"Authorization": "Bearer adm"}  # with keys on, /metrics needs a read or admin key


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
async def test_a_reload_is_logged_and_counted(tmp_path: Path) -> None:
    async with serving(tmp_path, "--drain", "0", TASKROUTE_ADMIN_KEYS="adm") as (proc, url):
        proc.send_signal(signal.SIGHUP)
        async with aiohttp.ClientSession() as client:
            for _ in range(100):  # the SIGHUP's reload first, so the two do not race
                async with client.get(url + "/metrics", headers=ADMIN) as resp:
                    if 'taskroute_reloads_total{outcome="ok"} 1.0' in await resp.text():
                        break
                await asyncio.sleep(0.05)
            async with client.post(url + "/v1/taskroute/reload",
                                   headers={"X-Taskroute-Admin-Key": "adm"}) as resp:
                assert resp.status == 200
            (tmp_path / "policy.yaml").write_text("name: broken\nmodels: {}\n")
            async with client.post(url + "/v1/taskroute/reload",
                                   headers={"X-Taskroute-Admin-Key": "adm"}) as resp:
                assert resp.status == 400
            async with client.get(url + "/metrics", headers=ADMIN) as resp:
                metrics = await resp.text()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode()
    assert 'taskroute_reloads_total{outcome="ok"} 2.0' in metrics
    assert 'taskroute_reloads_total{outcome="refused"} 1.0' in metrics
    assert "policy reloaded (SIGHUP)" in log
    assert "policy reloaded (POST /v1/taskroute/reload)" in log
    assert "policy reload (POST /v1/taskroute/reload) refused" in log
