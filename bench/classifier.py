"""How long the shipped task classifier takes per prompt.

    python bench/classifier.py [--n 5000]

Prints the one-off model load time and p50/p99 of `LinearTaskClassifier.predict` in
microseconds, for short prompts (the labelled examples of under 300 characters) and long
ones (4–20 kB documents stitched from the examples, a question at the end). Long inputs are
bounded by the featurizer (head and tail only), so their cost should not grow with length.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from importlib import resources

from taskroute.classify import LinearTaskClassifier


def _examples() -> list[str]:
    raw = resources.files("taskroute.data").joinpath("task_examples.jsonl").read_text("utf-8")
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


def _long_prompts(texts: list[str], count: int, rng: random.Random) -> list[str]:
    prompts = []
    for _ in range(count):
        target = rng.randrange(4_000, 20_000)
        parts = ["Answer using only the documents below."]
        while sum(map(len, parts)) < target:
            parts.append(rng.choice(texts))
        parts.append("Question: " + rng.choice(texts)[:200])
        prompts.append("\n\n".join(parts))
    return prompts


def _time(clf: LinearTaskClassifier, prompts: list[str], n: int) -> list[float]:
    for text in prompts[:50]:
        clf.predict(text)  # warm up
    timings = []
    for i in range(n):
        text = prompts[i % len(prompts)]
        start = time.perf_counter_ns()
        clf.predict(text)
        timings.append((time.perf_counter_ns() - start) / 1_000)
    return sorted(timings)


def _report(name: str, timings: list[float], prompts: list[str]) -> None:
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    avg_len = sum(map(len, prompts)) / len(prompts)
    print(f"{name:6s} n={len(timings):<6d} avg {avg_len:8.0f} chars   "
          f"p50 {p50:7.1f} µs   p99 {p99:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description="time LinearTaskClassifier.predict")
    parser.add_argument("--n", type=int, default=5_000, help="predictions per group")
    args = parser.parse_args()

    rng = random.Random(0)
    texts = _examples()
    short = [t for t in texts if len(t) < 300]
    rng.shuffle(short)
    long = _long_prompts(texts, 300, rng)

    clf = LinearTaskClassifier.bundled()
    start = time.perf_counter()
    classes = clf.classes  # first use reads the model file
    print(f"model load {1_000 * (time.perf_counter() - start):.1f} ms, {len(classes)} classes")
    _report("short", _time(clf, short, args.n), short)
    _report("long", _time(clf, long, args.n), long)


if __name__ == "__main__":
    main()
