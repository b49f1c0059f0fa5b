"""Which HTTP server should the gateway run on? A minimal pass-through proxy on aiohttp.web and on
starlette+uvicorn (httptools, uvloop), each in front of the same instant upstream, measured with
an aiohttp load generator at concurrency 1 and 32.

    python bench/server_choice.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,'
    b'"total_tokens":6}}'
)
BODY = b'{"model":"auto","messages":[{"role":"user","content":"hello there"}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_upstream(port: int) -> None:
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_aiohttp(port: int, upstream: int, use_uvloop: bool) -> None:
    import aiohttp
    import msgspec
    from aiohttp import web

    url = f"http://127.0.0.1:{upstream}/v1/chat/completions"

    async def start(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def chat(request: web.Request) -> web.Response:
        data = msgspec.json.decode(await request.read())
        client: aiohttp.ClientSession = request.app["client"]
        async with client.post(url, data=msgspec.json.encode(data)) as resp:
            payload = msgspec.json.decode(await resp.read())
        return web.Response(body=msgspec.json.encode(payload), content_type="application/json",
                            headers={"X-Taskroute-Model": "m"})

    app = web.Application()
    app.on_startup.append(start)
    app.router.add_post("/v1/chat/completions", chat)
    if use_uvloop:
        import uvloop
        uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_starlette(port: int, upstream: int) -> None:
    import aiohttp
    import msgspec
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    url = f"http://127.0.0.1:{upstream}/v1/chat/completions"
    state: dict[str, Any] = {}

    async def chat(request: Request) -> Response:
        if "client" not in state:
            state["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        data = msgspec.json.decode(await request.body())
        async with state["client"].post(url, data=msgspec.json.encode(data)) as resp:
            payload = msgspec.json.decode(await resp.read())
        return Response(msgspec.json.encode(payload), media_type="application/json",
                        headers={"X-Taskroute-Model": "m"})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


async def load(port: int, concurrency: int, total: int) -> tuple[float, list[float]]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    latencies: list[float] = []
    remaining = total
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        for _ in range(50):  # warm up
            async with client.post(url, data=BODY,
                                   headers={"Content-Type": "application/json"}) as r:
                await r.read()

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with client.post(url, data=BODY,
                                       headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    assert r.status == 200
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], env=os.environ.copy())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        kind, port, upstream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        if kind == "_upstream":
            run_upstream(port)
        elif kind == "_aiohttp":
            run_aiohttp(port, upstream, False)
        elif kind == "_aiohttp_uvloop":
            run_aiohttp(port, upstream, True)
        else:
            run_starlette(port, upstream)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    up = free_port()
    procs = [spawn("_upstream", str(up), "0")]
    targets = {"direct": up}
    for kind in ("_aiohttp", "_aiohttp_uvloop", "_starlette"):
        port = free_port()
        procs.append(spawn(kind, str(port), str(up)))
        targets[kind.lstrip("_")] = port
    try:
        for port in targets.values():
            wait_port(port)
        for conc in (1, 32):
            for name, port in targets.items():
                rps, lat = asyncio.run(load(port, conc, args.requests))
                lat.sort()
                print(f"c={conc:<3} {name:<16} {rps:8.0f} req/s  p50 "
                      f"{statistics.median(lat) * 1000:6.3f} ms  p99 "
                      f"{lat[int(len(lat) * 0.99)] * 1000:6.3f} ms", flush=True)
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    main()
