"""Gateway overhead and throughput: the upstream directly, through taskroute, through LiteLLM.

    .venv/bin/python bench/gateway.py [--requests 3000] [--max-seconds 20] [--skip-litellm]
                                      [--trace] [--concurrency 1,32]

One run starts the stand-in upstream that answers instantly (the package's SIMULATED upstream),
`taskroute serve` and the LiteLLM proxy (a pinned version, installed on first use into its own
virtual environment under bench/out/) pointed at it, each as its own process with one worker;
then the same load is sent to each with an aiohttp load generator — concurrency 1 and 32,
streaming and not — and throughput, p50/p99 latency and first-token latency are printed, with
the ratios the gateway issue sets as targets. taskroute's Responses API (`/v1/responses`, the
row `responses`) is measured beside its chat completions, on the same gateway and route.
LiteLLM is skipped, with a message, when it cannot be installed.

`--trace` also runs the taskroute scenario through a second `taskroute serve` with tracing on
(the `otel` extra), exporting every span over OTLP/HTTP to a local receiver in its own process
(bench/otlp_sink.py, which decodes the payloads as a collector would): the row `traced`, and
the ratio of its p50 to the untraced gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import OUT, ROOT, Processes, free_port, fresh_db, litellm_binary

KEY = "sk-bench-not-a-real-key"
UPSTREAM_MODEL = "gpt-4.1-mini"
PROMPT = "hello there, how are you today?"


@dataclass
class Result:
    target: str
    stream: bool
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    first_tokens: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


# -- configuration ------------------------------------------------------------------------------

def bench_policy(upstream: str) -> Path:
    """The default policy with every provider aimed at the stand-in upstream."""
    from taskroute.demo.policy import simulated_policy_text
    from taskroute.policy.loader import default_policy_text

    text = simulated_policy_text(default_policy_text(), upstream)
    path = OUT / "bench_policy.yaml"
    path.write_text(text.replace("name: default", "name: bench", 1))
    return path


def litellm_config(upstream: str) -> Path:
    path = OUT / "litellm_config.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {UPSTREAM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  set_verbose: false\n"
    )
    return path


# -- load ---------------------------------------------------------------------------------------

async def load(
    target: str, url: str, model: str, *, stream: bool, concurrency: int, total: int,
    max_seconds: float,
) -> Result:
    responses_api = url.endswith("/v1/responses")
    body: dict[str, object] = (
        {"model": model, "input": PROMPT, "max_output_tokens": 50, "stream": stream}
        if responses_api else
        {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 50,
         "stream": stream})
    # the first token: a chat chunk, or (Responses API) the first output_text.delta event
    token_mark = b"output_text.delta" if responses_api else b""
    headers = {"Authorization": f"Bearer {KEY}"}
    latencies: list[float] = []
    first_tokens: list[float] = []
    errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as client:
        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            async with client.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    errors += 1
                    failure = await resp.read()
                    if errors == 1:
                        print(f"  {target}: HTTP {resp.status}: {failure[:300]!r}", flush=True)
                    return
                if stream:
                    first = None
                    async for line in resp.content:
                        if first is None and line.startswith(b"data: {") and (
                                token_mark in line):
                            first = time.perf_counter() - t0
                    if first is not None:
                        first_tokens.append(first)
                else:
                    await resp.read()
            latencies.append(time.perf_counter() - t0)

        for _ in range(min(100, total)):  # warm up: connections, caches, lazy imports
            await one()
        latencies.clear()
        first_tokens.clear()
        errors = 0
        begin = time.perf_counter()
        deadline = begin + max_seconds

        async def worker() -> None:
            nonlocal issued
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                try:
                    await one()
                except (TimeoutError, aiohttp.ClientError):
                    nonlocal_errors()

        def nonlocal_errors() -> None:
            nonlocal errors
            errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - begin
    return Result(target, stream, concurrency, len(latencies), errors, seconds, latencies,
                  first_tokens)


# -- report -------------------------------------------------------------------------------------

def print_result(r: Result) -> None:
    ft = f"{r.pct(r.first_tokens, 0.5):8.2f}" if r.first_tokens else "       -"
    print(f"{r.target:<10} {'stream' if r.stream else 'json':<6} c={r.concurrency:<3} "
          f"{r.requests:>6} ok {r.errors:>4} err {r.rps:9.0f} req/s  p50 {r.p50:8.2f} ms  "
          f"p99 {r.pct(r.latencies, 0.99):8.2f} ms  first token p50 {ft} ms", flush=True)


def print_ratios(results: list[Result]) -> None:
    by = {(r.target, r.stream, r.concurrency): r for r in results}
    print("\nratios")
    for stream in (False, True):
        mode = "stream" if stream else "json"
        direct, ours = by.get(("direct", stream, 1)), by.get(("taskroute", stream, 1))
        if direct and ours:
            added = ours.p50 - direct.p50
            print(f"  {mode:<6} c=1 : taskroute adds {added:6.3f} ms at p50 over the upstream "
                  f"directly (target < 1 ms: {'met' if added < 1 else 'NOT met'})")
        lite = by.get(("litellm", stream, 1))
        if direct and lite:
            print(f"  {mode:<6} c=1 : LiteLLM adds   {lite.p50 - direct.p50:6.3f} ms at p50")
        traced = by.get(("traced", stream, 1))
        if traced and ours:
            print(f"  {mode:<6} c=1 : tracing on adds {traced.p50 - ours.p50:6.3f} ms at p50 "
                  f"({traced.p50:.3f} vs {ours.p50:.3f} ms: {traced.p50 / ours.p50:.2f}x); "
                  f"p99 {traced.pct(traced.latencies, 0.99):.3f} vs "
                  f"{ours.pct(ours.latencies, 0.99):.3f} ms")
        resp1, resp32 = by.get(("responses", stream, 1)), by.get(("responses", stream, 32))
        ours32, lite32 = by.get(("taskroute", stream, 32)), by.get(("litellm", stream, 32))
        if resp1 and ours:
            print(f"  {mode:<6} c=1 : the Responses API adds {resp1.p50 - ours.p50:6.3f} ms at "
                  "p50 over taskroute's chat completions")
        if resp32 and ours32 and ours32.rps:
            print(f"  {mode:<6} c=32: the Responses API serves {resp32.rps / ours32.rps:5.1%} "
                  "of taskroute's chat-completions throughput")
        direct32 = by.get(("direct", stream, 32))
        if ours32 and direct32:
            print(f"  {mode:<6} c=32: taskroute serves {ours32.rps / direct32.rps:5.1%} of the "
                  "upstream's direct throughput")
        if ours32 and lite32 and lite32.rps:
            ratio = ours32.rps / lite32.rps
            print(f"  {mode:<6} c=32: taskroute / LiteLLM throughput = {ratio:5.1f}x "
                  f"(target >= 10x: {'met' if ratio >= 10 else 'NOT met'})")


def start_traced(procs: Processes, upstream: str) -> tuple[str | None, str | None]:
    """The OTLP sink and a second gateway exporting its spans to it: their URLs (the
    gateway's None when either did not start)."""
    sink_port = free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    if not procs.serve("the OTLP sink (is the otel extra installed?)",
                       [sys.executable, str(ROOT / "bench" / "otlp_sink.py"), "--port",
                        str(sink_port)], OUT / "otlp_sink.log", sink + "/count", 20):
        return None, None
    traced = procs.taskroute(bench_policy(upstream), OUT / "taskroute_traced.log",
                             "--db", str(fresh_db(OUT / "bench_traced_log.db")),
                             env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink,
                                  "OTEL_SERVICE_NAME": "taskroute-bench"})
    return sink, traced


def spans_received(sink: str) -> str:
    async def ask() -> str:
        await asyncio.sleep(6)  # the batch processor exports every 5 s
        async with aiohttp.ClientSession() as client, client.get(sink + "/count") as resp:
            return await resp.text()

    return asyncio.run(ask())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per scenario (default 3000)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="time bound per scenario (default 20)")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--trace", action="store_true",
                        help="also taskroute with tracing on, exporting to a local OTLP sink")
    parser.add_argument("--concurrency", default="1,32",
                        help="the concurrencies to run, comma-separated (default 1,32)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    with Processes() as procs:
        upstream = procs.stand_in(OUT / "upstream.log")
        if upstream is None:
            return 1
        gateway = procs.taskroute(bench_policy(upstream), OUT / "taskroute.log",
                                  "--db", str(fresh_db(OUT / "bench_log.db")))
        if gateway is None:
            return 1
        targets = [("direct", upstream + "/v1/chat/completions", UPSTREAM_MODEL),
                   ("taskroute", gateway + "/v1/chat/completions", "auto"),
                   ("responses", gateway + "/v1/responses", "auto")]
        sink = None
        if args.trace:
            sink, traced = start_traced(procs, upstream)
            if traced is None:
                return 1
            targets.insert(2, ("traced", traced + "/v1/chat/completions", "auto"))
        binary = None if args.skip_litellm else litellm_binary()
        if binary is not None:
            lite = procs.litellm(binary, litellm_config(upstream), OUT / "litellm.log", KEY)
            if lite is not None:
                targets.append(("litellm", lite + "/v1/chat/completions", UPSTREAM_MODEL))
        print(f"{args.requests} requests per scenario, at most {args.max_seconds:.0f} s each; "
              "upstream: SIMULATED, answers instantly\n", flush=True)
        results = []
        for stream in (False, True):
            for concurrency in levels:
                for name, url, model in targets:
                    result = asyncio.run(load(
                        name, url, model, stream=stream, concurrency=concurrency,
                        total=args.requests, max_seconds=args.max_seconds))
                    print_result(result)
                    results.append(result)
        print_ratios(results)
        if sink is not None:
            print(f"\nthe OTLP sink received {spans_received(sink)} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
