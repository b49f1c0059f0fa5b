"""Nine-model set: train on train.json, score on test.json, costs from prices.json.

    .venv/bin/python bench/eval_nine.py [--report nine-report.html]
Prints AIQ, quality at the best single model's cost and cost at its quality, per strategy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from taskroute.cli.main import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "llmrouter-9models"

if __name__ == "__main__":
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        sys.exit(0)
    report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv \
        else "nine-report.html"
    sys.exit(main(["eval", f"llmrouter:{DATA / 'train.json'}",
                   "--test", f"llmrouter:{DATA / 'test.json'}", "--report", report]))
