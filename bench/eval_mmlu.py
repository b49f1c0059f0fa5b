"""MMLU two-model set, 5-fold CV: random, always, learned, oracle; APGR, CPT; HTML report.

    .venv/bin/python bench/eval_mmlu.py [--report mmlu-report.html]
Reads ../shared/data/routellm-mmlu; exits 0 with a message when it is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from taskroute.cli.main import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routellm-mmlu"

if __name__ == "__main__":
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        sys.exit(0)
    report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv \
        else "mmlu-report.html"
    sys.exit(main(["eval", f"routellm:{DATA}", "--cv", "5", "--report", report]))
