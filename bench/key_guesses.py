"""How many wrong-key guesses reach a 401 in a few seconds, with the wrong-key brake and without.

    .venv/bin/python bench/key_guesses.py [--seconds 5] [--concurrency 16]

Starts a real `taskroute serve` process with one user key on 127.0.0.1 twice, side by side in one
run: with the brake as shipped (10 wrong keys per client address a minute, then 429 with
Retry-After) and with it effectively off (`TASKROUTE_WRONG_KEY_LIMIT=1000000000`, what the
gateway did before: every guess answered 401). Each time a bounded load of concurrent requests
with a fresh wrong key each, for `--seconds` (at most 200,000 requests), counts the answers by
status; then the right key is tried from the same address. Prints the counts and the guess rate
an attacker gets. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-right-key"
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
CAP = 200_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(tmp: Path, limit: str | None) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TASKROUTE_API_KEYS": KEY}
    env.pop("TASKROUTE_WRONG_KEY_LIMIT", None)
    if limit:
        env["TASKROUTE_WRONG_KEY_LIMIT"] = limit
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskroute", "serve", "--port", str(port),
        "--db", str(tmp / f"log-{port}.db"), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as client:
        for _ in range(400):
            try:
                async with client.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return proc, url
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise SystemExit("taskroute serve did not start")


async def guess(url: str, seconds: float, concurrency: int) -> tuple[Counter[int], int]:
    counts: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    n = 0

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal n
        while time.monotonic() < deadline and n < CAP:
            n += 1
            headers = {"Authorization": f"Bearer sk-guess-{n}"}
            async with client.post(url + "/v1/chat/completions", json=BODY,
                                   headers=headers) as resp:
                await resp.read()
                counts[resp.status] += 1

    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        async with client.get(url + "/v1/models",
                              headers={"Authorization": f"Bearer {KEY}"}) as resp:
            right = resp.status
    return counts, right


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, limit in (("brake off (before)", "1000000000"), ("brake on (shipped)", None)):
            proc, url = await start(Path(tmp), limit)
            try:
                counts, right = await guess(url, args.seconds, args.concurrency)
            finally:
                proc.terminate()
                await proc.wait()
            total = sum(counts.values())
            print(f"{label:20} {total:7,} wrong-key requests in {args.seconds:g} s: "
                  f"{counts[401]:7,} answered 401 (a guess checked), {counts[429]:7,} 429; "
                  f"{counts[401] / args.seconds:9,.1f} guesses/s checked; "
                  f"right key afterwards from the same address: {right}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
