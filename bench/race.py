"""Speculative race vs always-strong vs chain-with-gates, on simulated models.

    .venv/bin/python bench/race.py [--requests 200] [--hard 0.3] [--concurrency 32]

SIMULATED: the stand-in upstream (taskroute.providers.simulated) serves two models on
127.0.0.1 — `fast` (first token after 150 ms, skill 0.5, $0.40/$1.60 per M tokens) and `strong`
(800 ms, skill 0.95, $5/$25). Each sends its whole answer with the first token, so time to
first token is time to the answer. Prompts are tagged easy (difficulty 0.2) or hard (0.8); below
its skill a model hedges ("I'm not sure...") with low log-probabilities, which the refusal gate
and the logprob confidence detect. An answer is correct when it comes from a model able to
answer it (no hedge, no refusal).

Strategies, each a task class of one policy: always-fast (the latency reference), always-strong,
chain-with-gates (fast, escalating to strong when a gate rejects) and the speculative race (both
at once; the fast answer wins when it passes its gates with confidence >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskroute.policy.loader import parse_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.records import RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router

POLICY = """
name: race-bench
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
models:
  sim/fast: {{tier: fast, price: {{input: 0.40, output: 1.60}}}}
  sim/strong: {{tier: strong, price: {{input: 5.00, output: 25.00}}}}
tiers:
  fast: {{use: sim/fast, escalate to: [sim/strong]}}
  strong: {{use: sim/strong}}
tasks:
  always_fast: {{tier: fast, meaning: the fast model only}}
  always_strong: {{tier: strong, meaning: the strong model only}}
  chain: {{tier: fast, meaning: fast then strong, gates: [non_empty, refusal,
          {{logprob: {{min confidence: 0.8}}}}]}}
  race: {{tier: fast, meaning: both at once, gates: [non_empty, refusal],
         race: {{against: sim/strong, min confidence: 0.8}}}}
classifier: false
when unsure: always_fast
calling: {{retries: 0}}
"""
PROFILES = {
    "fast": ModelProfile(first_token_s=0.150, skill=0.5),
    "strong": ModelProfile(first_token_s=0.800, skill=0.95),
}
STRATEGIES = ("always_fast", "always_strong", "chain", "race")


@dataclass(frozen=True, slots=True)
class Outcome:
    hard: bool
    first_token_s: float
    cost_usd: float
    correct: bool
    strong_called: bool


def workload(n: int, hard_share: float, seed: int = 7) -> list[tuple[str, bool]]:
    rng = random.Random(seed)
    prompts: list[tuple[str, bool]] = []
    for i in range(n):
        hard = rng.random() < hard_share
        level = 0.8 if hard else 0.2
        prompts.append((f"[difficulty={level}] question {i}: explain item {i} briefly", hard))
    return prompts


async def one(router: Router, task: str, prompt: str, hard: bool) -> Outcome:
    request = ChatRequest.from_prompt(prompt, logprobs=True)
    started = time.perf_counter()
    result = await router.complete(request, task=task)
    record: RouteRecord = result.record
    first = record.first_token_s if record.first_token_s is not None else (
        time.perf_counter() - started)
    text = result.response.text
    return Outcome(
        hard=hard, first_token_s=first, cost_usd=record.total_cost_usd,
        correct=" answers: " in text,
        strong_called=any(a.model == "sim/strong" for a in record.attempts),
    )


async def run_strategy(
    router: Router, task: str, prompts: list[tuple[str, bool]], concurrency: int
) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def limited(prompt: str, hard: bool) -> Outcome:
        async with gate:
            return await one(router, task, prompt, hard)

    return list(await asyncio.gather(*(limited(p, h) for p, h in prompts)))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summarize(name: str, outcomes: list[Outcome]) -> dict[str, float]:
    hard = [o for o in outcomes if o.hard]
    return {
        "p50": quantile([o.first_token_s for o in outcomes], 0.50),
        "p95": quantile([o.first_token_s for o in outcomes], 0.95),
        "cost": statistics.fmean(o.cost_usd for o in outcomes),
        "quality": statistics.fmean(o.correct for o in outcomes),
        "hard_quality": statistics.fmean(o.correct for o in hard) if hard else 1.0,
        "strong_share": statistics.fmean(o.strong_called for o in outcomes),
    }


def report(rows: dict[str, dict[str, float]], n: int, hard_share: float) -> bool:
    print(f"{n} requests, {hard_share:.0%} hard; first token fast 150 ms, strong 800 ms "
          "(SIMULATED upstream on 127.0.0.1)\n")
    print(f"{'strategy':<15}{'p50 TTFT':>10}{'p95 TTFT':>10}{'$/request':>12}"
          f"{'correct':>9}{'hard ok':>9}{'strong':>8}")
    for name, r in rows.items():
        print(f"{name:<15}{r['p50'] * 1000:>8.0f}ms{r['p95'] * 1000:>8.0f}ms"
              f"{r['cost']:>12.7f}{r['quality']:>9.0%}{r['hard_quality']:>9.0%}"
              f"{r['strong_share']:>8.0%}")
    race, fast, strong = rows["race"], rows["always_fast"], rows["always_strong"]
    latency_ok = race["p50"] <= fast["p50"] * 1.10
    quality_ok = race["hard_quality"] >= strong["hard_quality"]
    print(f"\nrace p50 first token {race['p50'] * 1000:.0f} ms vs fast {fast['p50'] * 1000:.0f} "
          f"ms: {race['p50'] / fast['p50'] - 1:+.1%} (target within +10%): "
          f"{'met' if latency_ok else 'NOT met'}")
    print(f"race hard-request quality {race['hard_quality']:.0%} vs always-strong "
          f"{strong['hard_quality']:.0%}: {'met' if quality_ok else 'NOT met'}")
    return latency_ok and quality_ok


async def measure(url: str, prompts: list[tuple[str, bool]], concurrency: int
                  ) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    router = Router(parse_policy(POLICY.format(url=url)), classifier=False)
    try:
        await run_strategy(router, "always_fast", prompts[:4], 4)  # warm the connections
        for task in STRATEGIES:
            rows[task] = summarize(task, await run_strategy(router, task, prompts, concurrency))
    finally:
        await router.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--hard", type=float, default=0.3, help="share of hard prompts")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    prompts = workload(args.requests, args.hard)
    with SimulatedUpstream(PROFILES) as upstream:  # served from its own thread and loop
        rows = asyncio.run(measure(upstream.url, prompts, args.concurrency))
    return 0 if report(rows, args.requests, args.hard) else 1


if __name__ == "__main__":
    sys.exit(main())
