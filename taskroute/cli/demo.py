"""`taskroute demo`: the whole pipeline for real, with no keys and no network — against the
package's SIMULATED models on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from taskroute.cli.common import add_policy_option, load_router
from taskroute.exceptions import CallerError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="route a mixed workload through the gateway to SIMULATED models (no keys needed)",
        description="Start the package's simulated models on 127.0.0.1 (per-model latency, "
        "price and failure profiles; no real model is called), point the policy at them, start "
        "the gateway, send the bundled example prompts through it with the official openai "
        "client (two of them streamed with their route's label shown first), and print the "
        "route table read back from the request log.",
    )
    add_policy_option(parser)
    parser.add_argument("--db", metavar="PATH|URL", help="keep the request log here: a SQLite "
                        "file or a store URL, postgresql://USER@HOST/DB (default: a temporary "
                        "file)")
    parser.add_argument("--concurrency", type=int, default=6, help="requests in flight")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taskroute.cli.serve import log_url

    with tempfile.TemporaryDirectory(prefix="taskroute-demo-") as tmp:
        url = log_url(args.db) if args.db else f"sqlite:{Path(tmp) / 'demo.db'}"
        asyncio.run(_demo(args, url))
    return 0


async def _demo(args: argparse.Namespace, url: str) -> None:
    from aiohttp import web

    from taskroute.demo.policy import profiles_for, simulated_policy
    from taskroute.demo.route_first import QUESTIONS as ROUTE_FIRST_QUESTIONS
    from taskroute.demo.route_first import show_route_first
    from taskroute.demo.workload import (
        demo_prompts,
        elapsed_since,
        format_table,
        route_table,
        send_all,
    )
    from taskroute.gateway.app import create_app
    from taskroute.gateway.server import listening_url
    from taskroute.providers.simulated import SimulatedUpstream
    from taskroute.router import Router
    from taskroute.store.base import LogReader
    from taskroute.store.registry import open_store
    from taskroute.store.urls import redact

    base = load_router(args).policy
    async with SimulatedUpstream(profiles_for(base)) as upstream:
        policy = simulated_policy(base, upstream)
        print(f"SIMULATED models on {upstream.url} — no real model is called, no key is "
              "needed, nothing leaves this machine.")
        for tier in policy.tiers:
            print(f"  {tier.name:<9} {tier.model:<28} (simulated profile: "
                  f"{_describe(upstream.profiles[policy.models[tier.model].upstream_name])})")
        store = await asyncio.to_thread(open_store, url)  # a server's store connects
        if not isinstance(store, LogReader):
            await store.aclose()
            raise CallerError(f"the demo reads its log back; {redact(url)} cannot be read")
        router = Router(policy, store=store)
        runner = web.AppRunner(create_app(router), access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        gateway = listening_url(site, "127.0.0.1")
        try:
            items = demo_prompts()
            print(f"gateway on {gateway}; sending {len(items)} example prompts "
                  f"({args.concurrency} at a time, every other one streamed)...\n")
            start = time.perf_counter()
            ids = await send_all(gateway + "/v1", items, concurrency=args.concurrency)
            took = elapsed_since(start)
            print("The route before the answer: two more questions, streamed with "
                  "X-Taskroute-Route-Event: 1 — each route's label shows before its first token:")
            await show_route_first(gateway + "/v1", _write)
            print()
            await store.flush()
            rows = await store.request_routes(ids)
        finally:
            await runner.cleanup()  # closes the store too
    strongest = policy.tiers[-1].model
    print(format_table(route_table(rows, policy), strongest))
    shown = len(ROUTE_FIRST_QUESTIONS)
    print(f"\n{len(ids)} requests in {took}, and {shown} with the route shown first; every one "
          f"of the {len(ids) + shown} is in the request log"
          + (f" at {redact(url)}" if args.db else "") + ".")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()  # the label shows before the text arrives


def _describe(profile: Any) -> str:
    return (f"first token {profile.first_token_s * 1000:.0f} ms, "
            f"{profile.tokens_per_s:.0f} tokens/s, skill {profile.skill:.2f}")
