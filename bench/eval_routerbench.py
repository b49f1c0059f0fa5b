"""routerbench-3: train on each task's train split, score on its test split, and the three mixed.

    .venv/bin/python bench/eval_routerbench.py [arc_challenge mbpp winograde mixed]

One table per set, every call paid: random, rule, the learned pre-router, the cascade with the
built-in gates (non_empty, refusal), the cascade with the learned escalation gate
(`cascade-learned`), the learned pre-router whose pick the learned gate may escalate
(`learned+gate`) and the oracle. AIQ, quality at the best single model's cost and cost at
its quality. Reference (the data's README): zero-router AIQ ARC 0.929, MBPP 0.683,
Winogrande 0.790, mixed 0.823.
"""

from __future__ import annotations

import sys
from pathlib import Path

from taskroute.cli.main import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routerbench-3"
SETS = {"arc_challenge": "arc_challenge", "mbpp": "mbpp", "winograde": "winograde",
        "mixed": "*"}
STRATEGIES = ["random", "rule", "learned", "cascade", "cascade-learned", "learned+gate",
              "oracle"]

if __name__ == "__main__":
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        sys.exit(0)
    for name in sys.argv[1:] or list(SETS):
        stem = SETS[name]
        print(f"\n== {name}")
        code = main(["eval", f"routerbench:{DATA / (stem + '_train.csv')}",
                     "--test", f"routerbench:{DATA / (stem + '_test.csv')}",
                     *[a for s in STRATEGIES for a in ("--strategy", s)]])
        if code:
            sys.exit(code)
