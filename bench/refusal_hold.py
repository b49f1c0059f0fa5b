"""What holding a live stream's opening for the refusal gate costs the client's first token.

    .venv/bin/python bench/refusal_hold.py [--requests 40]

One run starts the SIMULATED stand-in upstream with one model per token rate (a stand-in token
is a word, about 6 characters — some 1.5 real tokens), and `taskroute serve` with two tasks per
rate: `held` (the default `hold for refusal`: 40 characters or 300 ms), `early` (the same with
`release early: true`: out once the first word shows it is no refusal) and `live` (`hold for
refusal: false`). Each is streamed `--requests` times at concurrency 1, alternating, and the
client's time to the first answer text (p50, p99) and to the end are printed side by side, with
what the hold adds. The answer is 72 characters in 11 words, so the hold's 40 come mid-answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import OUT, Processes, fresh_db

KEY = "sk-bench-not-a-real-key"
PROMPT = "please describe the tidal patterns along the northern coast in winter"
RATES = (0, 200, 60, 25)   # stand-in words per second (0: all at once)
FIRST_TOKEN_MS = 20        # the upstream's own time to its first word


def _model(rate: int) -> str:
    return f"w{rate}"


def policy(upstream: str) -> Path:
    models = "".join(f"  up/{_model(r)}: {{tier: t{r}, price: {{input: 1, output: 2}}}}\n"
                     for r in RATES)
    tiers = "".join(f"  t{r}: {{use: up/{_model(r)}}}\n" for r in RATES)
    gates = "gates: [non_empty, refusal]"
    tasks = "".join(
        f"  held_{r}: {{tier: t{r}, meaning: held at {r} words/s, {gates}}}\n"
        f"  early_{r}: {{tier: t{r}, meaning: released early at {r} words/s, {gates}, "
        f"hold for refusal: {{release early: true}}}}\n"
        f"  live_{r}: {{tier: t{r}, meaning: live at {r} words/s, {gates}, "
        f"hold for refusal: false}}\n" for r in RATES)
    text = f"""name: refusal-hold-bench
providers:
  up: {{api: openai, base url: '{upstream}/v1', simulated: true}}
models:
{models}tiers:
{tiers}tasks:
{tasks}classifier: false
when unsure: held_0
calling:
  timeouts: {{connect: 1s, first token: 5s, total: 20s}}
"""
    path = OUT / "refusal_hold_policy.yaml"
    path.write_text(text)
    return path


async def one(client: aiohttp.ClientSession, url: str, task: str) -> tuple[float, float]:
    body = {"model": f"taskroute/{task}", "stream": True,
            "messages": [{"role": "user", "content": PROMPT}]}
    t0 = time.perf_counter()
    first: float | None = None
    async with client.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            if first is None and line.startswith(b"data: {"):
                event = json.loads(line[6:])
                if any((c.get("delta") or {}).get("content") for c in event.get("choices") or ()):
                    first = time.perf_counter() - t0
    if first is None:
        raise RuntimeError(f"{task}: no answer text")
    return first, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def run(gateway: str, requests: int) -> None:
    url = gateway + "/v1/chat/completions"
    print(f"{'words/s':>8} {'':<5} {'first p50':>10} {'first p99':>10} {'end p50':>9}   "
          "adds at p50 to the first token, held | early")
    async with aiohttp.ClientSession() as client:
        for rate in RATES:
            seen: dict[str, list[tuple[float, float]]] = {"held": [], "early": [], "live": []}
            for _ in range(5):  # warm up: connections, lazy imports
                for kind in seen:
                    await one(client, url, f"{kind}_{rate}")
            for _ in range(requests):
                for kind in seen:
                    seen[kind].append(await one(client, url, f"{kind}_{rate}"))
            p50 = {}
            for kind, times in seen.items():
                firsts, ends = [f for f, _ in times], [e for _, e in times]
                p50[kind] = pct(firsts, 0.5)
                print(f"{rate or 'all':>8} {kind:<5} {p50[kind]:8.2f}ms {pct(firsts, 0.99):8.2f}ms "
                      f"{pct(ends, 0.5):7.2f}ms", flush=True)
            print(f"{'':>8} {'':<5} {'':>10} {'':>10} {'':>9}   "
                  f"{p50['held'] - p50['live']:+8.2f} ms ({p50['held'] / p50['live']:.2f}x) | "
                  f"{p50['early'] - p50['live']:+8.2f} ms ({p50['early'] / p50['live']:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="per task (default 40)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with Processes() as procs:
        models = [f"--model={_model(r)}:{FIRST_TOKEN_MS}:{r}" for r in RATES]
        upstream = procs.stand_in(OUT / "refusal_hold_up.log", *models)
        if upstream is None:
            return 1
        gateway = procs.taskroute(policy(upstream), OUT / "refusal_hold_taskroute.log",
                                  "--db", str(fresh_db(OUT / "refusal_hold_log.db")))
        if gateway is None:
            return 1
        print(f"{args.requests} streamed requests per task, c=1; upstream: SIMULATED, first "
              f"word after {FIRST_TOKEN_MS} ms, a 72-character answer in 11 words\n")
        asyncio.run(run(gateway, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
