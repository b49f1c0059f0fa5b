"""p50/p99 of LearnedRouter.choose on the nine-model set's test prompts (trained on train.json).

    .venv/bin/python bench/eval_latency.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from taskroute.evaluate.datasets import Dataset
from taskroute.evaluate.importers import load
from taskroute.evaluate.train import train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "llmrouter-9models"

if __name__ == "__main__":
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        sys.exit(0)
    router = train(Dataset.from_records(load("llmrouter", DATA / "train.json")), c=1.0)
    texts = [r.text for r in load("llmrouter", DATA / "test.json")]
    times = []
    for text in texts * 4:
        start = time.perf_counter()
        router.choose(text)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    print(f"choose(): p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms "
          f"over {len(ms)} calls")
