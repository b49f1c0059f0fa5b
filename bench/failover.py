"""The failover scorecard: upstream faults on the first pick, through taskroute and LiteLLM.

    .venv/bin/python bench/failover.py [--deadline 12] [--no-plain] [--skip-litellm]

One run starts two SIMULATED stand-in upstreams as their own processes — A (the first pick,
OpenAI API, told per scenario how to misbehave through its `/_sim/*` control endpoint) and B
(the fallback, Anthropic API, always healthy; both serve the model `m`) — then `taskroute serve`
and the LiteLLM proxy (pinned, in its own virtual environment under bench/out/, as
bench/gateway.py sets it up), each with the same fallback: A's `m`, one retry, then B's `m`.
Connect timeouts and refused connections use addresses on 127.0.0.1 that fail below HTTP.

Each scenario is sent once per gateway, streamed (the main case) and not streamed, and scored:
  pass    a correct, complete answer (a stream: the whole text, then a normal end and [DONE])
  safe    a clear error: an error status, or a stream's error event before any text
  partial a truncated or broken answer, flagged (finish_reason "length", an error event or a
          stream cut off after text, an event that is not JSON)
  fail    a hang past the client's deadline, or a broken answer presented as success (a 200 or
          a [DONE] with cut, refused or invalid text, a 200 whose body is not JSON)
with the client's time to the first and the last byte of the body. Every request is bounded
by the client's deadline; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import OUT, free_port, fresh_db, litellm_binary, start, stop, wait_http

KEY = "sk-bench-not-a-real-key"
MODEL = "m"   # the upstream model name on both stand-ins
PROMPT = "please describe the tidal patterns along the northern coast in winter"
JSON_PROMPT = "reply in JSON: describe the tidal patterns along the northern coast"
MAX_TOKENS = 50
SCORES = ("pass", "safe", "partial", "fail")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    behave: dict[str, Any] = field(default_factory=dict)   # A's Behaviour fields
    profile: dict[str, Any] | None = None                  # A's ModelProfile fields
    route: str = "primary"      # primary (stand-in A) | hole (connect timeout) | refused
    json: bool = False          # the request asks for a JSON object
    max_tokens: int | None = MAX_TOKENS   # the caller's limit


SCENARIOS = (
    Scenario("500", {"status": 500}),
    Scenario("502", {"status": 502}),
    Scenario("503", {"status": 503}),
    Scenario("429, Retry-After 0.05 s", {"status": 429, "retry_after": "0.05"}),
    Scenario("429, Retry-After 30 s", {"status": 429, "retry_after": "30"}),
    Scenario("connect timeout", route="hole"),
    Scenario("connection refused", route="refused"),
    Scenario("upstream 401 (auth)", {"status": 401}),
    Scenario("context length exceeded", profile={"context_window": 20}),
    Scenario("slow first token (6 s)", {"delay_s": 6.0}),
    Scenario("dropped before a byte", {"hang_up": True}),
    Scenario("drop mid-stream", {"drop_after": 4}),
    Scenario("stall mid-stream (6 s)", {"stall_after": 4, "stall_s": 6.0}),
    Scenario("malformed SSE", {"malformed_sse": True}),
    Scenario("non-JSON 200 body", {"malformed_body": True}),
    Scenario("invalid JSON, JSON asked", {"invalid_json": True}, json=True),
    Scenario("truncated (length)", {"truncate": True}, max_tokens=None),
    Scenario("truncated below max_tokens", {"truncate": True}),
    Scenario("refusal", {"refuse": True}),
)


def expected_text(prompt: str) -> str:
    """What the stand-in's `m` answers (answers.py: its name, then the prompt's first words)."""
    return f"{MODEL} answers: {' '.join(prompt.split()[:8])}."


# -- configuration ------------------------------------------------------------------------------

ROUTES = {"primary": "the first pick misbehaves", "hole": "the first pick cannot be reached",
          "refused": "the first pick refuses connections"}


def taskroute_policy(a: str, b: str, hole: str, refused: str) -> Path:
    """A first pick and a fallback per route; each route twice as a task: live streams, and
    `buffer stream: true` (the answer read whole and gated before it goes out). The windows
    say the fallback holds more, as LiteLLM's `context_window_fallbacks` do."""
    gates = "gates: [non_empty, refusal, not_truncated, valid_json_if_asked]"
    tasks = "".join(
        f"  {r}: {{tier: {r}, meaning: {why}, {gates}}}\n"
        f"  {r}_buffered: {{tier: {r}, meaning: {why} (buffered), buffer stream: true, "
        f"{gates}}}\n" for r, why in ROUTES.items())
    price = "price: {input: 1, output: 2}"
    text = f"""name: failover-bench
providers:
  pa: {{api: openai, base url: '{a}/v1', simulated: true}}
  ph: {{api: openai, base url: '{hole}/v1', simulated: true}}
  pr: {{api: openai, base url: '{refused}/v1', simulated: true}}
  pb: {{api: anthropic, base url: '{b}', simulated: true}}
models:
  pa/{MODEL}: {{tier: primary, {price}, context: 8000}}
  ph/{MODEL}: {{tier: hole, {price}, context: 8000}}
  pr/{MODEL}: {{tier: refused, {price}, context: 8000}}
  pb/{MODEL}: {{tier: fallback, {price}, context: 200000}}
tiers:
  primary: {{use: pa/{MODEL}, escalate to: [pb/{MODEL}]}}
  hole: {{use: ph/{MODEL}, escalate to: [pb/{MODEL}]}}
  refused: {{use: pr/{MODEL}, escalate to: [pb/{MODEL}]}}
  fallback: {{use: pb/{MODEL}}}
tasks:
{tasks}classifier: false
when unsure: primary
calling:
  deadline: 10s
  timeouts: {{connect: 500ms, first token: 2s, total: 8s, stall: 1s}}
  retries: 1
  backoff: {{first: 50ms, max: 500ms}}
  circuit breaker: {{failures: 100000, cool down: 1s}}
"""
    path = OUT / "failover_policy.yaml"
    path.write_text(text)
    return path


def litellm_config(a: str, b: str, hole: str, refused: str) -> Path:
    """The same fallback for LiteLLM: one retry, then the other model group; its timeouts as
    close to taskroute's as its settings go (no stall timeout of its own: `stream_timeout`)."""
    groups = dict(zip(ROUTES, (a, hole, refused), strict=True))
    lines = ["model_list:"]
    for name, base in groups.items():
        lines += [f"  - model_name: {name}", "    litellm_params:",
                  f"      model: openai/{MODEL}", f"      api_base: {base}/v1",
                  f"      api_key: {KEY}"]
    lines += ["  - model_name: fallback", "    litellm_params:",
              f"      model: anthropic/{MODEL}", f"      api_base: {b}",
              f"      api_key: {KEY}"]
    fallbacks = "[" + ", ".join(f'{{"{name}": ["fallback"]}}' for name in groups) + "]"
    lines += ["litellm_settings:", "  drop_params: true", "  set_verbose: false",
              "router_settings:", "  num_retries: 1", "  timeout: 8", "  stream_timeout: 2",
              f"  fallbacks: {fallbacks}", f"  context_window_fallbacks: {fallbacks}",
              f"  content_policy_fallbacks: {fallbacks}", "  disable_cooldowns: true"]
    path = OUT / "failover_litellm.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- one call -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Seen:
    score: str
    note: str
    first_s: float | None    # the client's time to the body's first byte
    last_s: float | None     # ... and to its last


Mark = Callable[[str, str], Seen]   # (score, note) -> Seen, with the call's times


@dataclass(slots=True)
class _Raw:
    status: int = 0
    content_type: str = ""
    body: bytes = b""
    first_s: float | None = None
    last_s: float | None = None
    hung: bool = False
    cut: bool = False           # the connection broke before the body ended
    error: str = ""


async def _send(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                deadline_s: float) -> _Raw:
    raw = _Raw()
    started = time.monotonic()

    async def read() -> None:
        async with session.post(url, json=body,
                                headers={"Authorization": f"Bearer {KEY}"}) as resp:
            raw.status, raw.content_type = resp.status, resp.headers.get("Content-Type", "")
            data = bytearray()
            try:
                async for part in resp.content.iter_any():
                    if raw.first_s is None:
                        raw.first_s = time.monotonic() - started
                    data += part
                    raw.last_s = time.monotonic() - started
            except aiohttp.ClientPayloadError:
                raw.cut = True
            raw.body = bytes(data)

    try:
        await asyncio.wait_for(read(), deadline_s)
    except TimeoutError:
        raw.hung = True
    except aiohttp.ClientError as exc:
        raw.error = f"{type(exc).__name__}"
    return raw


def score(raw: _Raw, streamed: bool, wants_json: bool, prompt: str, deadline_s: float) -> Seen:
    def seen(verdict: str, note: str) -> Seen:
        return Seen(verdict, note, raw.first_s, raw.last_s)

    if raw.hung:
        return seen("fail", f"no end within {deadline_s:g} s")
    if raw.error:
        return seen("partial" if raw.body else "safe", f"connection error {raw.error}")
    if raw.status != 200:
        kind = _error_type(raw.body)
        return seen("safe", f"HTTP {raw.status}" + (f" {kind}" if kind else ""))
    if streamed and raw.content_type.startswith("text/event-stream"):
        return _score_stream(raw, wants_json, prompt, seen)
    try:
        payload = json.loads(raw.body)
        message = payload["choices"][0]
        text = message["message"].get("content") or ""
        finish = message.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError):
        return seen("fail", "200, body not a chat completion" + (", cut" if raw.cut else ""))
    return _judge(text, finish, wants_json, prompt, seen, ended="200")


def _score_stream(raw: _Raw, wants_json: bool, prompt: str, seen: Mark) -> Seen:
    text, finish, done, error, garbled = "", None, False, "", 0
    for line in raw.body.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            event = json.loads(data)
        except ValueError:
            garbled += 1
            continue
        if isinstance(event, dict) and "error" in event:
            error = str((event["error"] or {}).get("type") or "error")
            continue
        for choice in event.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
            finish = choice.get("finish_reason") or finish
    if error:
        return seen("partial" if text else "safe",
                    f"error event {error}" + (f" after {len(text)} chars" if text else ""))
    if garbled:
        return seen("partial", f"{garbled} event(s) not JSON reached the client")
    if not done:
        return seen("partial" if text else "safe",
                    f"stream cut, no [DONE]{f', {len(text)} chars' if text else ''}")
    return _judge(text, finish, wants_json, prompt, seen, ended="[DONE]")


def _judge(text: str, finish: str | None, wants_json: bool, prompt: str, seen: Mark,
           ended: str) -> Seen:
    want = expected_text(prompt)
    if finish == "length":
        return seen("partial", f"finish_reason length ({len(text)} chars), flagged")
    if wants_json:
        try:
            good = json.loads(text).get("answer") == want
        except (ValueError, AttributeError):
            return seen("fail", f"{ended} with invalid JSON: {text[:40]!r}")
        return seen("pass", "valid JSON") if good else seen("fail", f"{ended}, wrong JSON")
    if text == want:
        return seen("pass", f"{len(text)} chars, {finish}")
    return seen("fail", f"{ended} with {text[:44]!r}")


def _error_type(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return "(body not JSON)"
    if isinstance(error, dict):
        return str(error.get("type") or error.get("code") or "")[:28]
    return ""


# -- the run ------------------------------------------------------------------------------------

async def _control(session: aiohttp.ClientSession, a: str, scenario: Scenario | None) -> None:
    """Reset stand-in A, then give `m` the scenario's behaviour and profile."""
    async with session.post(a + "/_sim/reset") as resp:
        resp.raise_for_status()
    profile = (scenario.profile if scenario else None) or {}
    async with session.post(a + "/_sim/profile", json={"model": MODEL, **profile}) as resp:
        resp.raise_for_status()
    if scenario and scenario.behave:
        async with session.post(a + "/_sim/behave",
                                json={"model": MODEL, **scenario.behave}) as resp:
            resp.raise_for_status()


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    url: str
    models: dict[str, str]    # route -> the model field that picks it


async def run(gateways: list[Gateway], a: str, deadline_s: float, plain: bool
              ) -> dict[tuple[str, str, bool], Seen]:
    results: dict[tuple[str, str, bool], Seen] = {}
    modes = (True, False) if plain else (True,)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for scenario in SCENARIOS:
            for streamed in modes:
                for gateway in gateways:
                    await _control(session, a, scenario)
                    prompt = JSON_PROMPT if scenario.json else PROMPT
                    body: dict[str, Any] = {
                        "model": gateway.models[scenario.route], "stream": streamed,
                        "messages": [{"role": "user", "content": prompt}]}
                    if scenario.max_tokens is not None:
                        body["max_tokens"] = scenario.max_tokens
                    if scenario.json:
                        body["response_format"] = {"type": "json_object"}
                    # a fresh connection each call: a broken one must not spoil the next
                    async with aiohttp.ClientSession(timeout=timeout) as client:
                        raw = await _send(client, gateway.url + "/v1/chat/completions", body,
                                          deadline_s)
                    results[(scenario.name, gateway.name, streamed)] = score(
                        raw, streamed, scenario.json, prompt, deadline_s)
        await _control(session, a, None)
    return results


def _cell(seen: Seen | None) -> str:
    if seen is None:
        return "-"
    times = "/".join("  -  " if t is None else f"{t:5.2f}" for t in (seen.first_s, seen.last_s))
    return f"{seen.score:<7} {times}  {seen.note}"


def report(results: dict[tuple[str, str, bool], Seen], gateways: list[Gateway],
           plain: bool) -> None:
    width = 54
    for streamed in (True, False) if plain else (True,):
        print(f"\n{'streamed' if streamed else 'not streamed'} — score, client's first/last "
              "byte (s), what the client saw")
        print(f"{'scenario':<27}" + "".join(f"{g.name:<{width}}" for g in gateways))
        for scenario in SCENARIOS:
            cells = [_cell(results.get((scenario.name, g.name, streamed)))[:width - 2]
                     for g in gateways]
            print(f"{scenario.name:<27}" + "".join(f"{c:<{width}}" for c in cells))
    print()
    for gateway in gateways:
        for streamed in (True, False) if plain else (True,):
            counts = Counter(seen.score for (_, name, s), seen in results.items()
                             if name == gateway.name and s == streamed)
            line = ", ".join(f"{counts[k]} {k}" for k in SCORES)
            print(f"summary {gateway.name:<18} {'streamed' if streamed else 'plain':<8}: "
                  f"{line} of {sum(counts.values())}")


@contextmanager
def _unreachable() -> Iterator[tuple[str, str]]:
    from taskroute.providers.simulated.unreachable import black_hole, refusing

    with black_hole() as hole, refusing() as refused:
        yield hole, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deadline", type=float, default=12.0,
                        help="the client's deadline per request, seconds (default 12)")
    parser.add_argument("--no-plain", action="store_true", help="streamed requests only")
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        hole, refused = stack.enter_context(_unreachable())
        try:
            ports = [free_port() for _ in range(3)]
            a, b = (f"http://127.0.0.1:{p}" for p in ports[:2])
            for name, port, extra in (("a", ports[0], ["--control"]), ("b", ports[1], [])):
                procs.append(start([sys.executable, "-m", "taskroute.providers.simulated",
                                    "--port", str(port), *extra], OUT / f"failover_{name}.log"))
                if not wait_http(f"http://127.0.0.1:{port}/v1/models", 20, procs[-1]):
                    print(f"stand-in {name} did not start; see bench/out/failover_{name}.log")
                    return 1
            db = fresh_db(OUT / "failover_log.db")
            procs.append(start([sys.executable, "-m", "taskroute", "serve", "--policy",
                                str(taskroute_policy(a, b, hole, refused)), "--port",
                                str(ports[2]), "--db", str(db)], OUT / "failover_taskroute.log"))
            gw = f"http://127.0.0.1:{ports[2]}"
            if not wait_http(gw + "/healthz", 30, procs[-1]):
                print("taskroute serve did not start; see bench/out/failover_taskroute.log")
                return 1
            gateways = [Gateway("taskroute", gw, {r: f"taskroute/{r}" for r in ROUTES}),
                        Gateway("taskroute buffered", gw,
                                {r: f"taskroute/{r}_buffered" for r in ROUTES})]
            binary = None if args.skip_litellm else litellm_binary()
            if binary is not None:
                port = free_port()
                procs.append(start([str(binary), "--config",
                                    str(litellm_config(a, b, hole, refused)), "--host",
                                    "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                                   OUT / "failover_litellm.log",
                                   env={"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": KEY}))
                lite = f"http://127.0.0.1:{port}"
                if wait_http(lite + "/health/liveliness", 120, procs[-1]):
                    gateways.append(Gateway("litellm", lite, {r: r for r in ROUTES}))
                else:
                    print("LiteLLM skipped: the proxy did not start; see "
                          "bench/out/failover_litellm.log")
            print(f"{len(SCENARIOS)} scenarios on the first pick, fallback healthy; client "
                  f"deadline {args.deadline:g} s; upstream: SIMULATED", flush=True)
            results = asyncio.run(run(gateways, a, args.deadline, not args.no_plain))
            report(results, gateways, not args.no_plain)
        finally:
            stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
