"""Entry point: builds the parser from one module per noun and turns errors into one line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from taskroute.exceptions import TaskrouteError

# Each module defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
# the function takes the parsed args and returns the exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "route",
    "policy",
    "ask",
    "serve",
    "demo",
    "data",
    "eval",
    "train",
    "calibrate",
    "stats",
    "ab",
    "shadow",
    "plugins",
    "models",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskroute",
        description="Send each LLM request to the simplest model that reliably clears the bar.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"taskroute.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"taskroute.cli.{name}":
                continue  # that noun is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except TaskrouteError as exc:
        print(f"taskroute: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("taskroute: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
