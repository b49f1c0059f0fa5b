"""Score a task classifier on Dolly-format prompts it was not trained on.

    python scripts/score_task_classifier.py HELD_OUT.jsonl [--model FILE] [--policy FILE]

`HELD_OUT.jsonl` holds databricks-dolly-15k records (`instruction`, `context`, `category`),
such as a part of Dolly kept apart from `../shared/data/dolly-subset/`. Prints, per Dolly
category and over the six headline categories (`dolly.HEADLINE`):

* the task-class accuracy, classes mapped as `dolly.DOLLY_CLASSES` maps them;
* the right-tier share: the predicted class routes to the same tier as the true class under
  the policy (the default one unless `--policy`), which is what the routing acts on.

The model is the shipped `taskroute/data/task_classifier.json` unless `--model`; it runs
exactly as the router runs it (pure Python, `LinearTaskClassifier`). The shipped model was
trained on `../shared/data/dolly-subset/` too, so score it on other Dolly records: on those it
was trained on the figures are optimistic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dolly import HEADLINE, load_dolly  # noqa: E402

from taskroute.classify import LinearTaskClassifier  # noqa: E402
from taskroute.policy.loader import load_default_policy, load_policy  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="+", help="Dolly-format JSONL files")
    parser.add_argument("--model", type=Path, help="a classifier file (default: the shipped one)")
    parser.add_argument("--policy", type=Path, help="the policy whose tiers are compared")
    args = parser.parse_args(argv)
    clf = LinearTaskClassifier.from_file(args.model) if args.model else (
        LinearTaskClassifier.bundled())
    policy = load_policy(args.policy) if args.policy else load_default_policy()
    tiers = {name: spec.tier for name, spec in policy.tasks.items()}

    rows: list[tuple[str, bool, bool]] = []  # (category, right class, right tier)
    for path in args.data:
        texts, labels, categories = load_dolly(path)
        for text, label, category in zip(texts, labels, categories, strict=True):
            task = clf.predict(text).task
            rows.append((category, task == label,
                         tiers.get(task, task) == tiers.get(label, label)))

    print(f"{len(rows)} prompts from {', '.join(str(p) for p in args.data)}; model "
          f"{clf.source}")
    print(f"{'category':24s} {'n':>5s}  {'class':>6s}  {'tier':>6s}")

    def line(name: str, chosen: list[tuple[str, bool, bool]]) -> None:
        n = len(chosen)
        if n:
            print(f"{name:24s} {n:5d}  {sum(r[1] for r in chosen) / n:6.3f}  "
                  f"{sum(r[2] for r in chosen) / n:6.3f}")

    for category in sorted({r[0] for r in rows}):
        line(category, [r for r in rows if r[0] == category])
    line("headline six", [r for r in rows if r[0] in HEADLINE])
    line("all", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
