"""`taskroute ask "PROMPT"`: route a prompt, call the models, print the answer, then the route
it took (every attempt) and what it cost."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from taskroute.cli.common import add_policy_option, load_router, read_request
from taskroute.exceptions import ChainExhausted, ConfigError
from taskroute.providers.keys import no_key_message
from taskroute.records import Attempt, RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ask",
        help="answer a prompt through the router and show the route it took",
        description="Route a prompt (or a JSON chat request from --request FILE or stdin), call "
        "the chosen model — escalating when an answer fails its gates or a call fails — and "
        "print the answer, then every attempt and the total cost.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (omit to read a JSON request)")
    parser.add_argument("--request", metavar="FILE", help="a JSON chat request ('-' for stdin)")
    parser.add_argument("--task", help="name the task class instead of inferring it")
    parser.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    parser.add_argument("--json", action="store_true",
                        help="print the answer and its route as one JSON object")
    add_policy_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request = read_request(args.prompt, args.request)
    router = load_router(args)
    no_keys = no_key_message(router.policy)
    if no_keys is not None:  # every attempt would fail the same way: say why, once
        raise ConfigError(no_keys)
    try:
        record, answer = asyncio.run(_ask(router, request, args))
    except ChainExhausted as exc:
        if args.json and exc.record is not None:
            print(json.dumps({"error": exc.message, "route": exc.record.to_dict()}, indent=2,
                             default=str))
            return 1
        raise ChainExhausted(gist(exc), attempts=exc.attempts) from None
    if args.json:
        print(json.dumps({"answer": answer, "route": record.to_dict()}, indent=2, default=str))
    else:
        if not args.stream:
            print(answer)
        print()
        print_route(record, sys.stdout)
    return 0


async def _ask(
    router: Router, request: ChatRequest, args: argparse.Namespace
) -> tuple[RouteRecord, str]:
    try:
        if not args.stream:
            result = await router.complete(request, task=args.task)
            return result.record, result.response.text
        stream = router.stream(request, task=args.task)
        parts: list[str] = []
        if stream.label and not args.json:  # decided already: shown before the model answers
            sys.stdout.write(f"[{stream.label}] ")
            sys.stdout.flush()
        async for chunk in stream:
            parts.append(chunk.delta_text)
            if not args.json:
                sys.stdout.write(chunk.delta_text)
                sys.stdout.flush()
        if not args.json:
            print()
        return stream.record, "".join(parts)
    finally:
        await router.aclose()


def gist(exc: ChainExhausted, width: int = 160) -> str:
    """A failed chain in one short line: the first cause, and how many attempts failed (the
    whole message lists every attempt's error)."""
    failed = [a for a in exc.attempts if a.status not in ("ok", "unchecked")]
    if not failed:
        return exc.message
    first = attempt_line(failed[0]).partition(" — ")[0]
    if len(first) > width:
        first = first[: width - 1] + "…"
    many = f"{len(failed)} attempts failed" if len(failed) > 1 else "1 attempt failed"
    return f"no model in the chain gave an acceptable answer: {first} ({many}; --json for all)"


def print_route(record: RouteRecord, out: TextIO) -> None:
    decision = record.decision
    out.write(f"Route: {decision.task} → {decision.tier} tier; "
              f"answered by {record.answered_by or 'nobody'}")
    if record.race_winner:
        sure = "" if record.race_confidence is None else (
            f"; the cheap answer's confidence {record.race_confidence:.2f} "
            f"from {record.confidence_source}")
        out.write(f" (the {record.race_winner} model won the race{sure})")
    out.write(".\n")
    for number, attempt in enumerate(record.attempts, 1):
        out.write(f"  {number}. {attempt_line(attempt)}\n")
    first = f", first token {record.first_token_s:.2f}s" if record.first_token_s else ""
    out.write(f"Total: ${record.total_cost_usd:.6f} in {record.latency_s:.2f}s{first}"
              f"{' (escalated)' if record.escalated else ''}.\n")


def attempt_line(attempt: Attempt) -> str:
    where = attempt.deployment if attempt.deployment == attempt.model else (
        f"{attempt.model} at {attempt.deployment}")
    line = f"{where} [{attempt.role}] {attempt.status}"
    failed = [v for v in attempt.verdicts if not v.passed]
    if failed:
        line += " by " + ", ".join(f"{v.gate} ({v.reason})" if v.reason else v.gate
                                   for v in failed)
    if attempt.error and attempt.status != "rejected":
        line += f": {attempt.error}"
    if attempt.status != "skipped":
        line += (f" — {attempt.latency_s:.2f}s, {attempt.input_tokens}+{attempt.output_tokens}"
                 f" tokens, ${attempt.cost_usd:.6f}")
    return line
