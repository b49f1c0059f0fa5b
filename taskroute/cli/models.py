"""`taskroute models`: the bundled catalogue of current models, or a policy's own models, with
tier, context window, provider kind and prices."""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskroute.models_catalogue import load_catalogue
from taskroute.policy import load_policy


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "models", help="list models: tier, context window, provider kind and prices",
        description="List the bundled catalogue of the built-in provider kinds' current models "
        "(prices in USD per million tokens, with the date they were checked), or with --policy "
        "the models a policy names.")
    parser.add_argument("--policy", help="list this policy's models instead of the catalogue")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _rows(policy_file: str | None) -> list[dict[str, Any]]:
    if policy_file is None:
        return [{"model": m.id, "kind": m.kind, "tier": m.tier,
                 "context_window": m.context_window, "input": m.price.input,
                 "output": m.price.output, "cached_input": m.price.cached_input,
                 "cache_write": m.price.cache_write, "checked": m.checked, "source": m.source}
                for m in load_catalogue()]
    policy = load_policy(policy_file)
    return [{"model": spec.id, "kind": policy.providers[spec.provider].api
             if spec.provider in policy.providers else "?", "tier": spec.tier,
             "context_window": spec.context, "input": spec.price.input,
             "output": spec.price.output, "cached_input": spec.price.cached_input,
             "cache_write": spec.price.cache_write}
            for spec in policy.models.values()]


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def run(args: argparse.Namespace) -> int:
    rows = _rows(args.policy)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["model"]) for r in rows), default=5)
    print(f"{'model':<{width}}  {'kind':<9} {'tier':<9} {'context':>9}  "
          f"{'input':>7} {'output':>7} {'cached':>7} {'write':>7}   USD per 1M tokens")
    for r in rows:
        print(f"{r['model']:<{width}}  {r['kind']:<9} {r['tier']:<9} {r['context_window']:>9,}  "
              f"{_money(r['input']):>7} {_money(r['output']):>7} "
              f"{_money(r['cached_input']):>7} {_money(r['cache_write']):>7}")
    checked = sorted({(r["kind"], r["checked"], r["source"]) for r in rows if "checked" in r})
    for kind, date, source in checked:
        print(f"{kind} prices checked on {date} from {source}")
    return 0
