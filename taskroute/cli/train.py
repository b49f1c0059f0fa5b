"""`taskroute train DATA -o router.npz`: fit the learned router on recorded outcomes."""

from __future__ import annotations

import argparse
import time
from typing import Any

from taskroute.cli.common import add_embedder_option, load_embedder


def register(sub: Any) -> None:
    parser = sub.add_parser("train", help="train the learned router")
    parser.add_argument("data", help="outcomes JSONL, or FORMAT:PATH to import on the fly")
    parser.add_argument("-o", "--output", required=True, help="router file to write (.npz)")
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
    router = train(data, c=args.c, lam=args.lam, target=args.target,
                   embedder=load_embedder(args),
                   progress=lambda m: print(f"  fitting {m}", flush=True))
    router.save(args.output)
    print(f"trained on {router.info['n_train']} prompts, {len(router.models)} models, "
          f"C={router.info['C']}, in {time.perf_counter() - started:.1f}s -> {args.output}")
    return 0
