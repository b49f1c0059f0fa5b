"""`taskroute serve --workers 2` on one port with SQLite alone: the kernel spreads connections
over both workers, and a rate limit and a budget hold across them (their counters in one
SQLite file), as they would across Redis-backed replicas; a budget hold left by a worker killed
mid-request is freed by the other's sweep."""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.shared.test_replicas import FAST, PER_USER_USD, policy_text

RPM = 8


@dataclass
class Workers:
    url: str
    upstream: SimulatedUpstream
    policy: Path
    proc: asyncio.subprocess.Process
    pids: set[int]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SO_REUSEPORT")


HOLD_EXPIRY_S = 6.0  # short, for the killed worker's hold; long beside the steps before it


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    async with started_workers(tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def started_workers(tmp_path: Path, budgets: str = "",
                          rate_limit: int | None = RPM) -> AsyncIterator[Workers]:
    """`serve --workers 2` on the simulated upstream; `budgets`: lines added to the policy's
    `budgets:` section."""
    async with SimulatedUpstream() as upstream:
        policy = tmp_path / "policy.yaml"
        policy.write_text(policy_text(upstream.url) + budgets, encoding="utf-8")
        port = free_port()
        out = (tmp_path / "serve.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskroute", "serve", "--workers", "2", "--port", str(port),
            "--policy", str(policy), "--db", str(tmp_path / "log.db"),
            *(["--rate-limit", str(rate_limit)] if rate_limit else []),
            "--hold-expiry", f"{HOLD_EXPIRY_S:g}s", stdout=out,
            stderr=asyncio.subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO),
                 "TASKROUTE_API_KEYS": "k-rate,k-b1,k-b2,k-b3,k-b4,k-b5,k-kill"})
        out.close()
        url = f"http://127.0.0.1:{port}"
        try:
            pids = await _until_both_answer(url, proc, tmp_path / "serve.log")
            yield Workers(url, upstream, policy, proc, pids)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _until_both_answer(url: str, proc: asyncio.subprocess.Process,
                             log: Path) -> set[int]:
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
                return pids
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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # by the clock, not a count of tries: a loaded machine is slow
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as c:
        while loop.time() < deadline:
            async with c.get(workers.url + "/readyz") as resp:
                body = await resp.json()
            seen[body["pid"]] = body["policy"]
            if len(seen) == 2 and set(seen.values()) == {"reloaded"}:
                break
            await asyncio.sleep(0.1)
    assert len(seen) == 2 and set(seen.values()) == {"reloaded"}, seen


def _process_state(pid: int) -> str:
    """R, S, Z, … from /proc; '' for no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


async def _gone(pid: int) -> None:
    """Until `pid` has exited (gone, or a zombie its parent has not reaped yet): 10 s at most."""
    for _ in range(200):
        if _process_state(pid) in ("", "Z", "X"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {pid} did not exit after SIGKILL")


async def _status(client: aiohttp.ClientSession, url: str) -> int:
    """The status of one request with the budgeted key; a connection reset (seen under load
    just after the kill, before the survivor alone holds the port) is tried again."""
    for _ in range(4):
        with contextlib.suppress(aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            return (await post(client, url, "k-kill"))[0]
        await asyncio.sleep(0.2)
    return (await post(client, url, "k-kill"))[0]


def _calling(pids: set[int], port: int) -> set[int]:
    """Which of `pids` hold an open TCP connection to 127.0.0.1:`port` (Linux's /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[2].endswith(f":{port:04X}") and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes
                   for fd in fds.iterdir() if os.readlink(fd).startswith("socket:")):
                found.add(pid)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
async def test_a_hold_left_by_a_worker_killed_mid_request_is_swept(tmp_path: Path) -> None:
    # a budget so small that one request in flight holds all of it (the day's first request is
    # admitted whatever its estimate; the next waits until that hold is settled or freed)
    async with started_workers(tmp_path, "  per key: 0.000000001\n", rate_limit=None) as workers:
        workers.upstream.answer_slowly(FAST, 120.0, times=1)
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)) as c:
            loop = asyncio.get_running_loop()
            sent_at = loop.time()  # the hold is taken after this, so it expires after + expiry
            stuck = asyncio.create_task(post(c, workers.url, "k-kill"))
            deadline = loop.time() + 30
            while not workers.upstream.requests[FAST] and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # (the upstream runs in this loop: no event to share)
            assert workers.upstream.requests[FAST] == 1, "the request never reached upstream"
            victim = _calling(workers.pids, workers.upstream.port)
            assert len(victim) == 1, victim
            pid = victim.pop()
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(aiohttp.ClientError):
                await stuck
            await _gone(pid)  # its listening socket closed: new connections reach the survivor
            # the survivor sees the dead worker's hold: refused while it stands ...
            status = await _status(c, workers.url)
            if loop.time() - sent_at < HOLD_EXPIRY_S:  # (a very slow machine got past it)
                assert status == 429
            # ... and admits once its sweep has freed it (it expires; sweeps come within half)
            while status != 200 and loop.time() < sent_at + HOLD_EXPIRY_S + 30:
                await asyncio.sleep(0.25)
                status = await _status(c, workers.url)
            assert status == 200
            assert loop.time() - sent_at >= HOLD_EXPIRY_S - 0.1  # freed by its expiry, not before
