"""Running `taskroute serve` replicas as separate processes, for the replica tests and
bench/scale.py: started on free loopback ports, ready once /readyz answers, stopped with
SIGTERM (graceful), killed if they do not go."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import aiohttp

from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]


class Replica:
    def __init__(self, proc: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_replica(args: Sequence[str], env: Mapping[str, str], log: Path,
                        timeout_s: float = 60.0) -> Replica:
    """`taskroute serve ARGS --port <free>`, ready (or RuntimeError with its output)."""
    port = free_port()
    out = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskroute", "serve", "--port", str(port), *args,
        stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env})
    out.close()
    url = f"http://127.0.0.1:{port}"
    replica = Replica(proc, url, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession() as client:
        while loop.time() < deadline:
            if proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with client.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return replica
            await asyncio.sleep(0.1)
    await replica.stop()
    output = await asyncio.to_thread(log.read_text, errors="replace")
    raise RuntimeError(f"taskroute serve did not start:\n{output}")


@contextlib.asynccontextmanager
async def replicas(count: int, args: Sequence[str], env: Mapping[str, str],
                   folder: Path) -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for i in range(count):
            started.append(await start_replica(args, env, folder / f"replica{i}.log"))
        yield started
    finally:
        await asyncio.gather(*(r.stop() for r in started))
