"""`python -m taskroute.providers.simulated --port 8400 --model small:150:80:0.4` (SIMULATED)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from taskroute.providers.simulated.profiles import ModelProfile
from taskroute.providers.simulated.server import SimulatedUpstream


def _profile(text: str) -> tuple[str, ModelProfile]:
    """NAME[:first_token_ms[:tokens_per_s[:skill]]]"""
    name, *numbers = text.split(":")
    values = [float(n) for n in numbers][:3]
    first_ms, tps, skill = values + [0.0, 0.0, 1.0][len(values):]
    return name, ModelProfile(first_token_s=first_ms / 1000, tokens_per_s=tps, skill=skill)


async def _serve(upstream: SimulatedUpstream) -> None:
    async with upstream:
        print(f"simulated upstream (no real models) at {upstream.url}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taskroute.providers.simulated",
                                     description="Serve the SIMULATED stand-in upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model", action="append", default=[], type=_profile,
                        help="NAME[:first_token_ms[:tokens_per_s[:skill]]], repeatable")
    parser.add_argument("--control", action="store_true",
                        help="serve POST /_sim/behave, /_sim/profile, /_sim/reset (control.py)")
    args = parser.parse_args(argv)
    upstream = SimulatedUpstream(dict(args.model), host=args.host, port=args.port,
                                 control=args.control)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(upstream))


if __name__ == "__main__":
    main()
