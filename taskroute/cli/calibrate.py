"""`taskroute calibrate ROUTER DATA (--strong-share P | --budget USD)`: set the learned λ."""

from __future__ import annotations

import argparse
from typing import Any

from taskroute.cli.common import add_embedder_option, load_embedder
from taskroute.exceptions import UnknownModel


def register(sub: Any) -> None:
    parser = sub.add_parser("calibrate", help="set the learned router's λ on a dataset")
    parser.add_argument("router", help="learned-router file (.npz) from `taskroute train`")
    parser.add_argument("data", help="outcomes JSONL, or FORMAT:PATH (only prompts are used)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--strong-share", type=_share,
                       help="share of calls (0-1, or a percentage like 20%%) to strong models")
    group.add_argument("--budget", type=float, help="average cost per request (router's unit)")
    parser.add_argument("--strong", action="append", default=[],
                        help="a strong model (repeatable; default: the most expensive)")
    parser.add_argument("-o", "--output", help="where to save (default: overwrite ROUTER)")
    add_embedder_option(parser)
    parser.set_defaults(func=run)


def _share(raw: str) -> float:
    value = float(raw.rstrip("%"))
    return value / 100 if raw.endswith("%") or value > 1 else value


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from taskroute.evaluate.calibrate import calibrate
    from taskroute.evaluate.loading import open_dataset
    from taskroute.evaluate.train import group_of
    from taskroute.learned.model import LearnedRouter, probabilities_table

    router = LearnedRouter.load(args.router, embedder=load_embedder(args))
    data = open_dataset(args.data)
    strong = []
    for name in args.strong or [router.models[int(np.argmax(router.costs))]]:
        if name not in router.models:
            raise UnknownModel(name, router.models)
        strong.append(router.models.index(name))
    probs = probabilities_table(router, data.texts, [group_of(r) for r in data.records])
    result = calibrate(probs, router.costs, strong=strong, strong_share=args.strong_share,
                       budget=args.budget)
    router.lam, router.target = result.lam, None
    router.save(args.output or args.router)
    print(f"λ = {result.lam:.6g}: {100 * result.strong_share:.1f}% strong calls, "
          f"mean cost {result.mean_cost:.6g} on {len(data)} prompts "
          f"-> {args.output or args.router}")
    return 0
