"""`taskroute train DATA -o router.npz`: fit the learned router on recorded outcomes.

`taskroute train DATA --gate -o gate.json`: fit the learned escalation gate instead, on the
recorded answers (`{learned: {model file: gate.json}}` in a task's gates uses it)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from taskroute.cli.common import add_embedder_option, load_embedder


def register(sub: Any) -> None:
    parser = sub.add_parser("train", help="train the learned router")
    parser.add_argument("data", help="outcomes JSONL, or FORMAT:PATH to import on the fly")
    parser.add_argument("-o", "--output", required=True,
                        help="router file to write (.npz), or gate file (.json) with --gate")
    parser.add_argument("--gate", action="store_true", help="train the learned escalation gate "
                        "on the recorded answers instead of the router")
    parser.add_argument("--C", type=float, dest="c", help="regularisation (default: chosen on "
                        "a held-out fifth of the data)")
    parser.add_argument("--lam", type=float, default=0.0, help="λ: quality traded per unit cost")
    parser.add_argument("--target", type=float, help="cheapest model with P(success) >= this")
    add_embedder_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taskroute.evaluate.loading import open_dataset
    from taskroute.evaluate.train import train

    started = time.perf_counter()
    data = open_dataset(args.data)
    if args.gate:
        from taskroute.evaluate.escalation import train_gate

        gate = train_gate(data, c=args.c or 1.0)
        gate.save(args.output)
        print(f"trained the escalation gate on {gate.info['n_rows']} recorded answers "
              f"({len(gate.weights)} weights) in {time.perf_counter() - started:.1f}s "
              f"-> {args.output}")
        return 0
    router = train(data, c=args.c, lam=args.lam, target=args.target,
                   embedder=load_embedder(args),
                   progress=lambda m: print(f"  fitting {m}", flush=True))
    router.save(args.output)
    print(f"trained on {router.info['n_train']} prompts, {len(router.models)} models, "
          f"C={router.info['C']}, in {time.perf_counter() - started:.1f}s -> {args.output}")
    return 0
