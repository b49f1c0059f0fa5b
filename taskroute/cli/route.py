"""`taskroute route`: the decision for a prompt and why, without calling any model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskroute.cli.common import add_policy_option, load_router, read_request


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "route",
        help="show which model a prompt would go to, and why (calls no model)",
        description="Decide the route for a prompt, or for a whole JSON chat request read from "
        "--request FILE or stdin, and explain it. No model is called.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (omit to read a JSON request)")
    parser.add_argument("--request", metavar="FILE", help="a JSON chat request ('-' for stdin)")
    parser.add_argument("--task", help="name the task class instead of inferring it")
    parser.add_argument("--no-classifier", action="store_true",
                        help="infer the class by the policy's rules only")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    add_policy_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request = read_request(args.prompt, args.request)
    from taskroute.experiment import compose

    # the gateway serves the same composition, so both give this request the same decision
    router = compose(load_router(args, classifier=not args.no_classifier))
    decision = router.decide(request, task=args.task)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        print(decision.explain())
    return 0
