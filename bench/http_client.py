"""Which HTTP client should call the providers? aiohttp against httpx, measured side by side.

    python bench/http_client.py [--requests 2000]

Starts the simulated upstream (instant answers) in a subprocess on 127.0.0.1, then sends the same
chat-completion requests with each client at concurrency 1 and 32, each client pooled with
keep-alive, and prints requests/s and p50/p99 latency with the ratio. The call path uses the
faster one (issue 3: the hot path matters for the gateway's overhead target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

BODY = json.dumps({
    "model": "small",
    "messages": [{"role": "user", "content": "Extract the total from: invoice 42, total $17"}],
}).encode()
HEADERS = {"content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_load(
    send: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - start)

    for _ in range(50):
        await send()  # warm the pool
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - began), sorted(latencies)


async def with_aiohttp(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def send() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
        return await run_load(send, requests, concurrency)


async def with_httpx(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:
        async def send() -> None:
            response = await client.post(url, content=BODY, headers=HEADERS)
            response.read()
        return await run_load(send, requests, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "taskroute.providers.simulated", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"{'client':10}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for concurrency in (1, 32):
            rates = {}
            for name, run in (("aiohttp", with_aiohttp), ("httpx", with_httpx)):
                rate, lat = asyncio.run(run(url, args.requests, concurrency))
                rates[name] = rate
                print(f"{name:10}{concurrency:6}{rate:10.0f}{lat[len(lat) // 2] * 1000:9.2f}"
                      f"{lat[int(len(lat) * 0.99)] * 1000:9.2f}")
            print(f"{'':10}{'':6}  aiohttp/httpx throughput ratio: "
                  f"{rates['aiohttp'] / rates['httpx']:.2f}x")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


if __name__ == "__main__":
    main()
