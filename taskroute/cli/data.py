"""`taskroute data import FORMAT PATH -o out.jsonl`: recorded outcomes into the internal format."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from taskroute.exceptions import CallerError


def register(sub: Any) -> None:
    parser = sub.add_parser("data", help="import recorded model outcomes")
    nouns = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = nouns.add_parser("import", help="convert a foreign format to outcomes JSONL")
    imp.add_argument("format", choices=("llmrouter", "mtbench", "routellm", "routerbench",
                                        "store"))
    imp.add_argument("path", help="file or folder to read (store: also a log URL, "
                     "postgresql://…)")
    imp.add_argument("-o", "--output", required=True, help="outcomes JSONL to write")
    imp.add_argument("--prices", help="llmrouter: price file (default: prices.json beside)")
    imp.add_argument("--questions", help="mtbench: question.jsonl (default: beside)")
    imp.add_argument("--contaminated", help="routellm: prompts to exclude (JSONL)")
    imp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taskroute.evaluate.datasets import write_jsonl
    from taskroute.evaluate.importers import load

    options: dict[str, Any] = {}
    for name, fmt in (("prices", "llmrouter"), ("questions", "mtbench"),
                      ("contaminated", "routellm")):
        value = getattr(args, name)
        if value is not None:
            if args.format != fmt:
                raise CallerError(f"--{name} applies only to the {fmt} format")
            options[name] = Path(value)
    records = load(args.format, args.path, **options)
    count = write_jsonl(records, args.output)
    models = sorted({m for r in records for m in r.outcomes})
    print(f"wrote {count} prompts x {len(models)} models to {args.output}")
    return 0
