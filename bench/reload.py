"""Request latency while the gateway reloads a policy that names a large learned-router file.

    .venv/bin/python bench/reload.py [--seconds 6] [--concurrency 8]

Trains a learned router on ../shared's MMLU outcomes once (cached in bench/out/), writes a policy
whose `qa` task uses it, and serves that policy in-process, in front of the package's SIMULATED
upstream (answers instantly). A bounded load of concurrent chat requests runs in four phases of
`--seconds` each: no reload; a reload every 0.5 s through `POST /v1/taskroute/reload` with the
router file unchanged (the loaded router is shared, not read again); the same with the file
replaced before each reload (read again, on a worker thread); and, for comparison, that last
case built on the event loop (what the gateway did before). Prints p50/p99 latency per phase
and the p99 ratios. The load generator shares the gateway's loop, so a stall shows in both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "routellm-mmlu"
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from taskroute.demo.policy import simulated_policy_text  # noqa: E402
from taskroute.experiment import reloaded  # noqa: E402
from taskroute.gateway.app import create_app  # noqa: E402
from taskroute.gateway.context import GATEWAY  # noqa: E402
from taskroute.gateway.server import listening_url  # noqa: E402
from taskroute.gateway.settings import GatewaySettings  # noqa: E402
from taskroute.policy.loader import default_policy_text, load_policy  # noqa: E402
from taskroute.providers.simulated import SimulatedUpstream  # noqa: E402
from taskroute.router import Router  # noqa: E402
from taskroute.store.sqlite import SqliteStore  # noqa: E402

QA = {"model": "taskroute/qa",
      "messages": [{"role": "user", "content": "Which planet is closest to the sun? "
                    "A. Venus B. Mercury C. Mars D. Earth\nAnswer:"}]}


def router_file() -> Path:
    path = OUT / "reload-mmlu-router.npz"
    if not path.exists():
        from taskroute.evaluate.datasets import Dataset
        from taskroute.evaluate.importers import load
        from taskroute.evaluate.train import train

        OUT.mkdir(parents=True, exist_ok=True)
        print("training a learned router on MMLU (once; cached in bench/out/) ...", flush=True)
        train(Dataset.from_records(load("routellm", SHARED)), c=1.0).save(path)
    return path


def policy_file(upstream_url: str, learned: Path) -> Path:
    lines = simulated_policy_text(default_policy_text(), upstream_url).splitlines()
    qa = next(i for i, line in enumerate(lines) if line.startswith("  qa:"))
    lines[qa:qa + 1] = [
        "  qa:", "    tier: balanced", "    router:", f"      file: {learned}",
        "      models: {mixtral-8x7b-instruct-v0.1: openai/gpt-4.1-mini, "
        "gpt-4-1106-preview: openai/gpt-4.1}"]
    path = OUT / "reload-policy.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def load_phase(client: aiohttp.ClientSession, url: str, seconds: float,
                     concurrency: int, reload: object = None) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limit = 200_000  # bounded in count as well as time

    async def worker() -> None:
        while time.perf_counter() < deadline and len(latencies) < limit:
            start = time.perf_counter()
            async with client.post(url + "/v1/chat/completions", json=QA) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - start)

    async def reloader() -> int:
        done = 0
        while time.perf_counter() < deadline - 0.5:
            await asyncio.sleep(0.5)
            await reload()  # type: ignore[operator]
            done += 1
        return done

    jobs = [worker() for _ in range(concurrency)]
    if reload is not None:
        results = await asyncio.gather(*jobs, reloader())
        print(f"    ({results[-1]} reloads)")
    else:
        await asyncio.gather(*jobs)
    return latencies


def describe(name: str, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"  {name:<38} {len(ordered):>6} requests  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
          f"max {ordered[-1] * 1000:7.1f} ms")
    return p99


async def main(seconds: float, concurrency: int) -> None:
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the learned router is trained on it)")
        return
    learned = router_file()
    started = time.perf_counter()
    from taskroute.learned.model import LearnedRouter

    LearnedRouter.load(learned)
    print(f"learned-router file: {learned.stat().st_size / 1e6:.1f} MB, loads in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    async with SimulatedUpstream() as upstream:
        path = policy_file(upstream.url, learned)
        router = Router(load_policy(path), classifier=True,
                        store=SqliteStore(OUT / "reload-log.db"))
        app = create_app(router, GatewaySettings(extra={"admin_keys": ["bench"]}))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = listening_url(site, "127.0.0.1")
        gateway = app[GATEWAY]
        try:
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=concurrency + 2)) as client:
                def replace_file() -> None:  # as a retrained router would be
                    stat = learned.stat()
                    os.utime(learned, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

                async def unchanged() -> None:
                    async with client.post(url + "/v1/taskroute/reload",
                                           headers={"X-Taskroute-Admin-Key": "bench"}) as r:
                        assert r.status == 200, await r.text()

                async def off_loop() -> None:
                    replace_file()
                    await unchanged()

                async def on_loop() -> None:  # the old way: built where requests are served
                    replace_file()
                    old = gateway.routers.router
                    gateway.routers.swap(reloaded(old, load_policy(path)).warm())

                await load_phase(client, url, 1.0, concurrency)  # warm up
                print(f"concurrency {concurrency}, {seconds:g} s per phase:")
                base = describe("no reload", await load_phase(client, url, seconds, concurrency))
                same = describe("reloads, router file unchanged",
                                await load_phase(client, url, seconds, concurrency, unchanged))
                off = describe("reloads, file replaced: off the loop",
                               await load_phase(client, url, seconds, concurrency, off_loop))
                on = describe("reloads, file replaced: on the loop",
                              await load_phase(client, url, seconds, concurrency, on_loop))
                print(f"p99 with reloads / without: file unchanged {same / base:.2f}x; file "
                      f"replaced, off the loop {off / base:.2f}x, on the loop (before) "
                      f"{on / base:.2f}x")
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
