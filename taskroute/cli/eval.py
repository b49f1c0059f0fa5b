"""`taskroute eval DATA --strategy NAME [--cv K | --test DATA] [--report report.html]`.

A strategy is an offline way of routing, replayed over recorded outcomes; `--router` is its
older spelling, still accepted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from typing import Any

from taskroute.cli.common import add_embedder_option, load_embedder
from taskroute.exceptions import CallerError


def register(sub: Any) -> None:
    parser = sub.add_parser("eval", help="replay routing strategies over recorded outcomes "
                             "and score them")
    parser.add_argument("data", help="outcomes JSONL, or FORMAT:PATH to import on the fly")
    parser.add_argument("--strategy", "--router", action="append", default=[],
                        dest="strategy", metavar="NAME",
                        help="a routing strategy to replay: random, oracle, always:<model>, "
                        "learned, rule[:POLICY], cascade[:MODEL,MODEL...], cascade-learned, "
                        "learned+gate (repeatable; "
                        "default: all of them, with always:<model> for every model, and "
                        "cascade when the data has recorded responses; --router is the older "
                        "spelling)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--cv", type=int, default=0, metavar="K", help="K-fold cross-validation")
    split.add_argument("--test", metavar="DATA", help="train on DATA, score on this set")
    parser.add_argument("--report", metavar="HTML", help="write an HTML report with plots")
    parser.add_argument("--C", type=float, dest="c", metavar="C",
                        help="fix the learned router's regularisation (default: chosen on a "
                        "held-out fifth of each training split, never on the scored data)")
    parser.add_argument("--gates", default="non_empty,refusal", metavar="NAME,NAME",
                        help="the quality gates that judge the cascade's recorded answers "
                        "(default: non_empty,refusal)")
    add_embedder_option(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def _progress(total: int) -> Any:
    def wrap(steps: Iterable[int]) -> Iterable[int]:
        try:
            from tqdm import tqdm
        except ModuleNotFoundError:
            return steps
        bar: Iterable[int] = tqdm(steps, total=total, leave=False, desc="folds")
        return bar

    return wrap


def run(args: argparse.Namespace) -> int:
    from taskroute.evaluate.cascade import CascadeStrategy
    from taskroute.evaluate.escalation import GatedStrategy
    from taskroute.evaluate.loading import open_dataset
    from taskroute.evaluate.replay import evaluate
    from taskroute.evaluate.report import table_rows, write_report
    from taskroute.evaluate.strategies import make_strategy

    started = time.perf_counter()
    data = open_dataset(args.data)
    test = open_dataset(args.test) if args.test else None
    if test is None and args.cv < 2:
        raise CallerError("give --cv K (K >= 2) or --test DATA")
    has_responses = any(o.response is not None for r in data.records
                         for o in r.outcomes.values())
    names = args.strategy or ["random", *[f"always:{m}" for m in data.models], "rule",
                            "learned", *(["cascade"] if has_responses else []), "oracle"]
    gates = tuple(g.strip() for g in args.gates.split(",") if g.strip())
    if args.embedder and "learned" not in names:
        raise CallerError("--embedder adds sentence vectors to the learned router: "
                          "evaluate it with --strategy learned")
    embedder = load_embedder(args)
    strategies = [make_strategy(n, args.seed, c=args.c, gates=gates) for n in names]
    if embedder is not None:  # a second learned strategy, with the sentence vectors
        strategies += [make_strategy(n, args.seed, c=args.c, embedder=embedder)
                       for n in names if n == "learned"]
    for strategy in strategies:  # fail before the first fold, not in the middle of a progress bar
        if isinstance(strategy, CascadeStrategy | GatedStrategy):
            strategy.check(data)
    results = evaluate(strategies, data, test=test, cv=args.cv, seed=args.seed,
                       progress=_progress(args.cv or 1))
    header, rows = table_rows(results)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    protocol = f"{args.cv}-fold CV" if test is None else f"test set {args.test}"
    print(f"{len(data)} prompts, {len(data.models)} models, {protocol}, "
          f"{time.perf_counter() - started:.1f}s")
    if args.report:
        cost_label = "cost per request (USD)" if data.has_costs() else \
            "cost (0 = weakest model, 1 = strongest)"
        write_report(args.report, results, title=f"taskroute eval: {args.data}",
                     notes=[f"{len(data)} prompts, {len(data.models)} models, {protocol}",
                            "figures under CV are means over folds; curves are pooled"],
                     cost_label=cost_label)
        print(f"report -> {args.report}")
    return 0
