"""Speculative race vs always-strong vs chain-with-gates, on simulated models, with plain
client requests (no `logprobs`) and with an Anthropic-wire cheap model.

    .venv/bin/python bench/race.py [--requests 200] [--hard 0.3] [--concurrency 32] [--rounds 3]

SIMULATED: the stand-in upstream (taskroute.providers.simulated) serves three models on
127.0.0.1 — `fast` (OpenAI wire; first token after 150 ms, skill 0.5, $0.40/$1.60 per M
tokens), `fast-claude` (the same, over Anthropic's Messages wire, which has no logprobs) and
`strong` (800 ms, skill 0.95, $5/$25). Each sends its whole answer with the first token, so
time to first token is time to the answer. Prompts are tagged easy (difficulty 0.2) or hard
(0.8); below its skill a model hedges ("I'm not sure...") with low log-probabilities. An answer
is correct when it comes from a model able to answer it (no hedge, no refusal).

Strategies, each a task class of one policy: always-fast and always-fast-claude (the latency
references), always-strong, chain-with-gates (fast, escalating to strong when a gate rejects,
the logprob gate included) and the speculative race (both at once; the cheap answer wins when
it passes its gates with confidence >= 0.9) with either cheap model. The clients never ask for
logprobs: taskroute asks the OpenAI-wire model for them itself, and estimates the Anthropic
model's confidence (`taskroute/gates/confidence.py`); only `non_empty` gates the race, so the
confidence alone decides.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
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
  ant: {{api: anthropic, base url: '{url}'}}
models:
  sim/fast: {{tier: fast, price: {{input: 0.40, output: 1.60}}}}
  ant/fast-claude: {{tier: fast_claude, price: {{input: 0.40, output: 1.60}}}}
  sim/strong: {{tier: strong, price: {{input: 5.00, output: 25.00}}}}
tiers:
  fast: {{use: sim/fast, escalate to: [sim/strong]}}
  fast_claude: {{use: ant/fast-claude, escalate to: [sim/strong]}}
  strong: {{use: sim/strong}}
tasks:
  always_fast: {{tier: fast, meaning: the fast model only}}
  always_fast_claude: {{tier: fast_claude, meaning: the Anthropic fast model only}}
  always_strong: {{tier: strong, meaning: the strong model only}}
  chain: {{tier: fast, meaning: fast then strong, gates: [non_empty, refusal,
          {{logprob: {{min confidence: 0.8}}}}]}}
  race: {{tier: fast, meaning: both at once, gates: [non_empty],
         race: {{against: sim/strong, min confidence: 0.9}}}}
  race_claude: {{tier: fast_claude, meaning: both at once, gates: [non_empty],
                race: {{against: sim/strong, min confidence: 0.9}}}}
classifier: false
when unsure: always_fast
calling: {{retries: 0}}
"""
PROFILES = {
    "fast": ModelProfile(first_token_s=0.150, skill=0.5),
    "fast-claude": ModelProfile(first_token_s=0.150, skill=0.5),
    "strong": ModelProfile(first_token_s=0.800, skill=0.95),
}
STRATEGIES = ("always_fast", "always_fast_claude", "always_strong", "chain", "race",
              "race_claude")
RACES = (("race", "always_fast"), ("race_claude", "always_fast_claude"))


@dataclass(frozen=True, slots=True)
class Outcome:
    hard: bool
    first_token_s: float
    cost_usd: float
    correct: bool
    strong_called: bool
    cheap_won: bool
    logprobs_seen: bool            # the client got logprobs it never asked for
    confidence_source: str | None


def workload(n: int, hard_share: float, seed: int = 7) -> list[tuple[str, bool]]:
    rng = random.Random(seed)
    prompts: list[tuple[str, bool]] = []
    for i in range(n):
        hard = rng.random() < hard_share
        level = 0.8 if hard else 0.2
        prompts.append((f"[difficulty={level}] question {i}: explain item {i} briefly", hard))
    return prompts


async def one(router: Router, task: str, prompt: str, hard: bool) -> Outcome:
    request = ChatRequest.from_prompt(prompt)  # a plain client request: no logprobs asked
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
        cheap_won=record.race_winner == "cheap", logprobs_seen=result.response.logprobs is not None,
        confidence_source=record.confidence_source,
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


def share(outcomes: list[Outcome], test: Callable[[Outcome], bool]) -> float:
    return statistics.fmean(test(o) for o in outcomes) if outcomes else 0.0


def summarize(outcomes: list[Outcome]) -> dict[str, float]:
    hard = [o for o in outcomes if o.hard]
    easy = [o for o in outcomes if not o.hard]
    return {
        "p50": quantile([o.first_token_s for o in outcomes], 0.50),
        "p99": quantile([o.first_token_s for o in outcomes], 0.99),
        "easy_p50": quantile([o.first_token_s for o in easy], 0.50) if easy else 0.0,
        "cost": statistics.fmean(o.cost_usd for o in outcomes),
        "quality": share(outcomes, lambda o: o.correct),
        "hard_quality": share(hard, lambda o: o.correct) if hard else 1.0,
        "strong_share": share(outcomes, lambda o: o.strong_called),
        "easy_cheap_wins": share(easy, lambda o: o.cheap_won),
        "hard_cheap_wins": share(hard, lambda o: o.cheap_won),
        "logprobs_seen": share(outcomes, lambda o: o.logprobs_seen),
    }


def sources(outcomes: list[Outcome]) -> str:
    counted = Counter(o.confidence_source for o in outcomes if o.confidence_source)
    return ", ".join(f"{name} {n}" for name, n in counted.most_common()) or "-"


def report(rows: dict[str, dict[str, float]], seen: dict[str, str], n: int,
           hard_share: float, rounds: int) -> bool:
    print(f"{n} requests x {rounds} rounds per strategy, {hard_share:.0%} hard; first token "
          "fast 150 ms, strong 800 ms; "
          "plain client requests, no logprobs asked (SIMULATED upstream on 127.0.0.1)\n")
    print(f"{'strategy':<20}{'p50 TTFT':>10}{'p99 TTFT':>10}{'$/request':>12}{'correct':>9}"
          f"{'hard ok':>9}{'strong':>8}{'cheap wins easy/hard':>22}  confidence from")
    for name, r in rows.items():
        wins = (f"{r['easy_cheap_wins']:.0%} / {r['hard_cheap_wins']:.0%}"
                if name.startswith("race") else "-")
        print(f"{name:<20}{r['p50'] * 1000:>8.0f}ms{r['p99'] * 1000:>8.0f}ms"
              f"{r['cost']:>12.7f}{r['quality']:>9.0%}{r['hard_quality']:>9.0%}"
              f"{r['strong_share']:>8.0%}{wins:>22}  {seen[name]}")
    strong = rows["always_strong"]
    ok = True
    print()
    for race_name, fast_name in RACES:
        race, fast = rows[race_name], rows[fast_name]
        latency_ok = race["p50"] <= fast["p50"] * 1.10
        quality_ok = race["hard_quality"] >= strong["hard_quality"]
        wins_ok = race["easy_cheap_wins"] >= 0.95
        clean = race["logprobs_seen"] == 0
        print(f"{race_name}: p50 {race['p50'] * 1000:.0f} ms vs {fast_name} "
              f"{fast['p50'] * 1000:.0f} ms = x{race['p50'] / fast['p50']:.3f} "
              f"(target <= x1.10: {'met' if latency_ok else 'NOT met'}); p99 "
              f"{race['p99'] * 1000:.0f} ms = x{race['p99'] / fast['p99']:.2f} of {fast_name}, "
              f"x{race['p99'] / strong['p99']:.2f} of always_strong")
        print(f"  {' ' * len(race_name)}cheap model wins {race['easy_cheap_wins']:.0%} of easy "
              f"requests ({'met' if wins_ok else 'NOT met'}); hard requests answered "
              f"{race['hard_quality']:.0%} vs always-strong {strong['hard_quality']:.0%} "
              f"({'met' if quality_ok else 'NOT met'}); cost x{race['cost'] / strong['cost']:.2f} "
              f"of always-strong; logprobs leaked to the client: "
              f"{race['logprobs_seen']:.0%}")
        ok = ok and latency_ok and quality_ok and wins_ok and clean
    return ok


async def measure(url: str, prompts: list[tuple[str, bool]], concurrency: int, rounds: int
                  ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Every strategy once per round, the rounds pooled: a machine busy with something else
    for a moment slows every strategy alike instead of the one that happened to be running."""
    outcomes: dict[str, list[Outcome]] = {task: [] for task in STRATEGIES}
    router = Router(parse_policy(POLICY.format(url=url)), classifier=False)
    try:
        for warm in ("always_fast", "always_fast_claude"):  # warm the connections
            await run_strategy(router, warm, prompts[:4], 4)
        for _ in range(rounds):
            for task in STRATEGIES:
                outcomes[task] += await run_strategy(router, task, prompts, concurrency)
    finally:
        await router.aclose()
    return ({task: summarize(o) for task, o in outcomes.items()},
            {task: sources(o) for task, o in outcomes.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--hard", type=float, default=0.3, help="share of hard prompts")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="each strategy, interleaved")
    args = parser.parse_args()
    prompts = workload(args.requests, args.hard)
    with SimulatedUpstream(PROFILES) as upstream:  # served from its own thread and loop
        rows, seen = asyncio.run(measure(upstream.url, prompts, args.concurrency, args.rounds))
    return 0 if report(rows, seen, args.requests, args.hard, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
