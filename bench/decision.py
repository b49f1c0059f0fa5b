"""How long `Router.decide` takes: rules only, with the classifier, and with a learned router.

    python bench/decision.py [--requests 20000]

Builds varied requests (short and long prompts, system prompts, tools, JSON schemas, metadata),
decides each once to warm up, then times every decision and prints p50/p99/max in µs, plus the
time `import taskroute` takes in a fresh interpreter. Targets (issue 2): p99 < 1 ms with the
classifier, p50 < 100 µs without. The third row (issue 5: p99 < 1 ms with the learned router)
trains a learned router on ../shared's MMLU outcomes (the largest vocabulary of the shared sets)
and puts it on every task of the default policy; it is skipped without ../shared or scikit-learn.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from taskroute import ChatRequest, Router
from taskroute.policy.loader import load_default_policy
from taskroute.policy.model import LearnedRouterSpec

MMLU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routellm-mmlu"

SHORT = [
    "Summarize this article in three bullet points: {body}",
    "Extract the invoice number, date and total from: {body}",
    "Is this review positive or negative? {body}",
    "What is the capital of Australia?",
    "hey, how's it going?",
    "Write a Python function that merges two sorted lists.",
    "A train leaves at 3pm at 80 km/h; another at 4pm at 100 km/h. When does the second "
    "catch up? Show your reasoning.",
    "Convert this CSV to JSON: name,age\nAda,36\nAlan,41",
    "Book me a table for two tomorrow at 7pm.",
    "Draft the final statement to customers about the data breach.",
    "Using the passages below, answer: who founded the company?\n{body}",
    "Fix this bug:\n```python\ndef f(x):\n    return x +\n```",
]
FILLER = (
    "The quarterly report shows revenue of $4.2M, up 12% year over year, driven by the new "
    "enterprise plan. Costs rose 8%, mainly hosting. The board asked for a plan to cut churn. "
)
SCHEMA = {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": {
    "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}
TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


def make_requests(n: int, seed: int = 7) -> list[ChatRequest]:
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        body = FILLER * rng.choice([1, 1, 2, 5, 20, 80])  # up to ~14k characters
        prompt = rng.choice(SHORT).format(body=body) + f" (#{i})"
        data: dict[str, Any] = {"messages": []}
        if rng.random() < 0.4:
            data["messages"].append({"role": "system", "content": "You are a helpful assistant."})
        data["messages"].append({"role": "user", "content": prompt})
        if rng.random() < 0.2:
            data["tools"] = TOOLS
        if rng.random() < 0.2:
            data["response_format"] = SCHEMA
        if rng.random() < 0.5:
            data["metadata"] = {
                "user_tier": rng.choice(["free", "pro", "enterprise"]),
                "session_id": f"s{rng.randrange(500)}",
                "retrieval_score": f"{rng.random():.2f}",
            }
        requests.append(ChatRequest.from_dict(data))
    return requests


def report(label: str, samples: list[float], target: str) -> None:
    print(f"{label:28}{percentile(samples, 0.5):9.1f}{percentile(samples, 0.99):9.1f}"
          f"{max(samples):9.1f}   {target}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_decisions(router: Router, requests: list[ChatRequest]) -> list[float]:
    for request in requests[:500]:
        router.decide(request)  # warm-up: lazy loading, caches
    samples = []
    clock = time.perf_counter_ns
    for request in requests:
        start = clock()
        router.decide(request)
        samples.append((clock() - start) / 1000)
    return samples


def import_time_ms(runs: int = 5) -> float:
    code = "import time; t = time.perf_counter(); import taskroute; " \
           "print((time.perf_counter() - t) * 1000)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(times)


def learned_router(folder: Path) -> Router | str:
    """The default policy with a learned router (trained here on MMLU) on every task; or why
    not."""
    if not MMLU.is_dir():
        return f"skipped: {MMLU} not found"
    try:
        from taskroute.evaluate.datasets import Dataset
        from taskroute.evaluate.importers import load
        from taskroute.evaluate.train import train
    except ModuleNotFoundError as exc:
        return f"skipped: {exc} (pip install 'taskroute[eval]')"
    data = Dataset.from_records(load("routellm", MMLU))
    path = folder / "mmlu-router.npz"
    train(data, c=0.5).save(path)
    weak, strong = data.models  # sorted names: Mixtral, then gpt-4
    policy = load_default_policy()
    spec = LearnedRouterSpec(str(path), {weak: "openai/gpt-4.1-mini",
                                         strong: "anthropic/claude-opus-4-5"})
    tasks = {name: replace(task, router=spec) for name, task in policy.tasks.items()}
    return Router(replace(policy, tasks=tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    requests = make_requests(args.requests)
    print(f"{len(requests):,} varied requests; median prompt "
          f"{statistics.median(len(r.last_user_text) for r in requests):,.0f} chars, "
          f"longest {max(len(r.last_user_text) for r in requests):,}")
    print(f"{'':28}{'p50 µs':>9}{'p99 µs':>9}{'max µs':>9}   target")
    for label, router, target in (
        ("decide, rules only", Router.default(classifier=False), "p50 < 100 µs"),
        ("decide, with classifier", Router.default(), "p99 < 1000 µs"),
    ):
        report(label, time_decisions(router, requests), target)
    with tempfile.TemporaryDirectory() as folder:
        learned = learned_router(Path(folder))
        if isinstance(learned, str):
            print(f"decide, learned router: {learned}")
        else:
            report("decide, + learned router", time_decisions(learned, requests),
                   "p99 < 1000 µs")
    print(f"import taskroute (fresh interpreter, median of 5): {import_time_ms():.0f} ms "
          "(target < 150 ms)")


if __name__ == "__main__":
    main()
