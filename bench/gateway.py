"""Gateway overhead and throughput: the upstream directly, through taskroute, through LiteLLM.

    .venv/bin/python bench/gateway.py [--requests 3000] [--max-seconds 20] [--skip-litellm]

One run starts the stand-in upstream that answers instantly (the package's SIMULATED upstream),
`taskroute serve` and the LiteLLM proxy (a pinned version, installed on first use into its own
virtual environment under bench/out/) pointed at it, each as its own process with one worker;
then the same load is sent to each with an aiohttp load generator — concurrency 1 and 32,
streaming and not — and throughput, p50/p99 latency and first-token latency are printed, with
the ratios the gateway issue sets as targets. taskroute's Responses API (`/v1/responses`, the
row `responses`) is measured beside its chat completions, on the same gateway and route.
LiteLLM is skipped, with a message, when it cannot be installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

LITELLM_VERSION = "1.106.2"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
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


# -- processes ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes]) -> bool:
    async def probe() -> bool:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return False
                try:
                    async with client.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status < 500:
                            return True
                except (TimeoutError, aiohttp.ClientError):
                    pass
                await asyncio.sleep(0.2)
        return False

    return asyncio.run(probe())


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, cwd=ROOT)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """End the bench's processes, the last started first."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_db(path: Path) -> Path:
    """`path` with no log left from an earlier run (nor its WAL files)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def bench_policy(upstream: str) -> Path:
    """The default policy with every provider aimed at the stand-in upstream."""
    from taskroute.demo.policy import simulated_policy_text
    from taskroute.policy.loader import default_policy_text

    text = simulated_policy_text(default_policy_text(), upstream)
    path = OUT / "bench_policy.yaml"
    path.write_text(text.replace("name: default", "name: bench", 1))
    return path


def litellm_binary() -> Path | None:
    venv = OUT / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if binary.exists() and _installed_version(venv) == LITELLM_VERSION:
        return binary
    print(f"installing LiteLLM {LITELLM_VERSION} into {venv} (first run only)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"litellm[proxy]=={LITELLM_VERSION}"], check=True, timeout=900,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"LiteLLM skipped: could not install litellm[proxy]=={LITELLM_VERSION} ({exc})")
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return binary if binary.exists() else None


def _installed_version(venv: Path) -> str | None:
    try:
        found = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=60)
    except (subprocess.SubprocessError, OSError):
        return None
    return found.stdout.strip() or None


def litellm_config(upstream: str) -> Path:
    path = OUT / "litellm_config.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {UPSTREAM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-bench-not-a-real-key\n"
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
    headers = {"Authorization": "Bearer sk-bench-not-a-real-key"}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per scenario (default 3000)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="time bound per scenario (default 20)")
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port, gw_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        procs.append(start([sys.executable, "-m", "taskroute.providers.simulated",
                            "--port", str(up_port)], OUT / "upstream.log"))
        if not wait_http(upstream + "/v1/models", 20, procs[-1]):
            print("the stand-in upstream did not start; see bench/out/upstream.log")
            return 1
        db = fresh_db(OUT / "bench_log.db")
        procs.append(start([sys.executable, "-m", "taskroute", "serve", "--policy",
                            str(bench_policy(upstream)), "--port", str(gw_port), "--db",
                            str(db)], OUT / "taskroute.log"))
        gateway = f"http://127.0.0.1:{gw_port}"
        if not wait_http(gateway + "/healthz", 30, procs[-1]):
            print("taskroute serve did not start; see bench/out/taskroute.log")
            return 1
        targets = [("direct", upstream + "/v1/chat/completions", UPSTREAM_MODEL),
                   ("taskroute", gateway + "/v1/chat/completions", "auto"),
                   ("responses", gateway + "/v1/responses", "auto")]
        binary = None if args.skip_litellm else litellm_binary()
        if binary is not None:
            lite_port = free_port()
            procs.append(start([str(binary), "--config", str(litellm_config(upstream)),
                                "--host", "127.0.0.1", "--port", str(lite_port),
                                "--num_workers", "1"], OUT / "litellm.log",
                               env={"LITELLM_LOG": "ERROR",
                                    "LITELLM_MASTER_KEY": "sk-bench-not-a-real-key"}))
            if wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", 120, procs[-1]):
                targets.append(("litellm", f"http://127.0.0.1:{lite_port}/v1/chat/completions",
                                UPSTREAM_MODEL))
            else:
                print("LiteLLM skipped: the proxy did not start; see bench/out/litellm.log")
        print(f"{args.requests} requests per scenario, at most {args.max_seconds:.0f} s each; "
              "upstream: SIMULATED, answers instantly\n", flush=True)
        results = []
        for stream in (False, True):
            for concurrency in (1, 32):
                for name, url, model in targets:
                    result = asyncio.run(load(
                        name, url, model, stream=stream, concurrency=concurrency,
                        total=args.requests, max_seconds=args.max_seconds))
                    print_result(result)
                    results.append(result)
        print_ratios(results)
    finally:
        stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
