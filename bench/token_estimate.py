"""How far the chars/4 token estimate (what routing, context-window fitting and count_tokens
use) is from a real tokenizer, on the real prompts in ../shared.

    .venv/bin/pip install tiktoken && npm pack tiktoken@1.0.22 && tar xzf tiktoken-1.0.22.tgz
    .venv/bin/python bench/token_estimate.py --encoders package/encoders

tiktoken downloads its BPE files at first use, which this machine cannot; the npm `tiktoken`
package ships the same ranks (`encoders/o200k_base.json`, `cl100k_base.json`), which this
script loads. Prints, per data set and encoding, the estimate's error (estimate / true - 1):
median, mean absolute, p5/p95, and the share of prompts it undercounts by more than 10 % and
20 % (an undercount is what could send a request to a window too small for it).
"""

from __future__ import annotations

import argparse
import ast
import base64
import csv
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from taskroute.signals import estimate_tokens

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def prompts(limit: int) -> Iterator[tuple[str, list[str]]]:
    dolly = SHARED / "dolly-subset" / "dolly_train.jsonl"
    rows = [json.loads(line) for line in dolly.read_text().splitlines()[:limit]]
    yield "dolly", [f"{r['instruction']}\n\n{r['context']}".strip() for r in rows]
    mmlu = sorted((SHARED / "routellm-mmlu").glob("*.csv"))
    texts: list[str] = []
    for path in mmlu:
        with path.open(newline="") as f:
            texts += [row["prompt"] for row in csv.DictReader(f)][:max(1, limit // len(mmlu))]
    yield "mmlu", texts
    for name in ("mbpp_test", "arc_challenge_test", "winograde_test"):
        with (SHARED / "routerbench-3" / f"{name}.csv").open(newline="") as f:
            rows2 = list(csv.DictReader(f))[:limit]
        yield name.removesuffix("_test"), [" ".join(ast.literal_eval(r["prompt"]))
                                           for r in rows2]
    data = json.loads((SHARED / "llmrouter-9models" / "test.json").read_text())[:limit]
    yield "llmrouter", [row["question"] for row in data]


def encoding(folder: Path, name: str):  # type: ignore[no-untyped-def]
    import tiktoken

    spec = json.loads((folder / f"{name}.json").read_text())
    parts = spec["bpe_ranks"].split(" ")
    start = int(parts[1])  # "! <first rank> <token> <token> ...": ranks run on from there
    ranks = {base64.b64decode(tok): start + i for i, tok in enumerate(parts[2:])}
    return tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks,
                             special_tokens=spec["special_tokens"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", type=Path, required=True,
                        help="the npm tiktoken package's encoders/ folder")
    parser.add_argument("--limit", type=int, default=1000, help="prompts per data set")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"no shared data at {SHARED}; nothing to measure")
        return 1
    encoders = {n: encoding(args.encoders, n) for n in ("o200k_base", "cl100k_base")}
    print(f"{'data set':<14}{'encoding':<13}{'n':>6}{'true tok p50':>14}{'median err':>12}"
          f"{'mean |err|':>12}{'p5 err':>9}{'p95 err':>9}{'under 10%':>11}{'under 20%':>11}")
    for name, texts in prompts(args.limit):
        for enc_name, enc in encoders.items():
            errors, true_counts = [], []
            for text in texts:
                true = len(enc.encode(text, disallowed_special=()))
                if true == 0:
                    continue
                true_counts.append(true)
                errors.append(estimate_tokens(text) / true - 1)
            ordered = sorted(errors)

            def pct(q: float, values: list[float] = ordered) -> float:
                return values[min(len(values) - 1, int(len(values) * q))]

            under10 = sum(e < -0.10 for e in errors) / len(errors)
            under20 = sum(e < -0.20 for e in errors) / len(errors)
            print(f"{name:<14}{enc_name:<13}{len(errors):>6}"
                  f"{statistics.median(true_counts):>14.0f}{statistics.median(errors):>12.1%}"
                  f"{statistics.fmean(abs(e) for e in errors):>12.1%}{pct(0.05):>9.1%}"
                  f"{pct(0.95):>9.1%}{under10:>11.1%}{under20:>11.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
