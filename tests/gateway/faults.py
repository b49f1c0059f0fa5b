"""The fault matrix's harness: every fault kind, made to happen on the first pick only or on
every deployment, sent through a real gateway (OpenAI API, streamed or not) in front of the
SIMULATED upstream; what the client received and what the log recorded, as an `Outcome`.

`tests/gateway/test_fault_matrix.py` asserts each case; `scripts/fault_table.py` runs the same
cases and writes the table in docs/faults.md.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
from aiohttp import web

from taskroute.experiment import compose
from taskroute.gateway.app import create_app
from taskroute.gateway.server import listening_url
from taskroute.policy.loader import parse_policy
from taskroute.policy.model import Policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.providers.simulated.unreachable import black_hole, refusing
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore

Scope = Literal["first pick", "every deployment"]
SCOPES: tuple[Scope, ...] = ("first pick", "every deployment")
# provider/model for each deployment, in the order the chain tries them
DEPLOYMENTS = ("p1/small", "p2/small-b", "p3/large", "p4/large-b")
DEADLINE_S = 2.0  # room for timeouts a loaded machine will not hit by accident

POLICY = """
name: fault-matrix
providers:
  p1: {{api: openai, base url: '{p1}/v1', simulated: true}}
  p2: {{api: anthropic, base url: '{p2}', simulated: true}}
  p3: {{api: openai, base url: '{p3}/v1', simulated: true}}
  p4: {{api: anthropic, base url: '{p4}', simulated: true}}
models:
  p1/small: {{tier: fast, price: {{input: 1, output: 2}}, also at: [p2/small-b]}}
  p2/small-b: {{tier: fast, price: {{input: 1, output: 2}}}}
  p3/large: {{tier: strong, price: {{input: 20, output: 40}}, also at: [p4/large-b]}}
  p4/large-b: {{tier: strong, price: {{input: 20, output: 40}}}}
tiers:
  fast: {{use: p1/small, escalate to: [p3/large]}}
  strong: {{use: p3/large}}
tasks:
  chat: {{tier: fast, gates: [non_empty, refusal, not_truncated]}}
classifier: false
when unsure: chat
calling:
  deadline: {deadline}s
  timeouts: {{connect: 300ms, first token: 400ms, total: 800ms}}
  retries: 1
  backoff: {{first: 5ms, max: 40ms}}
  circuit breaker: {{failures: 100, cool down: 30s}}
"""



def fault_policy(urls: list[str] | None = None) -> Policy:
    """The matrix's policy, its providers at `urls` (placeholders when only read, as by
    scripts/fault_table.py for the settings it states)."""
    p1, p2, p3, p4 = urls or ["http://127.0.0.1:9"] * 4
    return parse_policy(POLICY.format(p1=p1, p2=p2, p3=p3, p4=p4, deadline=DEADLINE_S),
                        file="<fault matrix>")


Make = Callable[[SimulatedUpstream, str], None]   # make one upstream model misbehave


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    make: Make | None = None            # a misbehaviour of the simulated model
    address: str | None = None          # or an address that fails below HTTP


FAULTS = (
    Fault("500", lambda up, m: up.fail(m, 500)),
    Fault("502", lambda up, m: up.fail(m, 502)),
    Fault("503", lambda up, m: up.fail(m, 503)),
    Fault("429, short Retry-After (10 ms)", lambda up, m: up.fail(m, 429, retry_after=0.01)),
    Fault("429, long Retry-After (30 s)", lambda up, m: up.fail(m, 429, retry_after=30)),
    Fault("connect timeout", address="black hole"),
    Fault("refused connection", address="refusing"),
    Fault("slow first token", lambda up, m: up.answer_slowly(m, 5.0)),
    Fault("total timeout", lambda up, m: up.stall(m, 5.0, after=3)),
    Fault("dropped before the first byte", lambda up, m: up.hang_up(m)),
    Fault("dropped after the first byte", lambda up, m: up.drop_connection(m, after=3)),
    Fault("malformed SSE", lambda up, m: up.send_malformed_sse(m)),
    Fault("non-JSON 200 body", lambda up, m: up.send_malformed_body(m)),
    Fault("answer fails its gates (refusal)", lambda up, m: up.refuse(m)),
    Fault("truncated (finish_reason length)", lambda up, m: up.truncate(m)),
    Fault("upstream 401", lambda up, m: up.fail(m, 401)),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int                     # the HTTP status the client got
    done: bool | None               # a stream ended with [DONE] (None: not streamed)
    error_type: str | None          # the error's type in the body or the stream's error event
    content: bool                   # the client got some answer text
    retry_after: str | None         # the Retry-After header
    log_status: str                 # the log: the request's status ...
    log_http: int                   # ... the status it says the client got
    answered_by: str | None         # ... the deployment that answered
    attempts: tuple[str, ...]       # ... each attempt, "deployment role status"
    seconds: float                  # how long the client waited in all


@contextlib.contextmanager
def _addresses(fault: Fault, scope: Scope, upstream: SimulatedUpstream) -> Iterator[list[str]]:
    """Each deployment's provider address: the upstream's, or an unreachable one."""
    urls = [upstream.url] * len(DEPLOYMENTS)
    if fault.address is None:
        yield urls
        return
    make = black_hole if fault.address == "black hole" else refusing
    with contextlib.ExitStack() as stack:
        for i in range(1 if scope == "first pick" else len(DEPLOYMENTS)):
            urls[i] = stack.enter_context(make())
        yield urls


async def run_case(fault: Fault, scope: Scope, streamed: bool) -> Outcome:
    async with SimulatedUpstream() as upstream:
        if fault.make is not None:
            failing = DEPLOYMENTS[:1] if scope == "first pick" else DEPLOYMENTS
            for deployment in failing:
                fault.make(upstream, deployment.split("/", 1)[1])
        with _addresses(fault, scope, upstream) as urls, \
                tempfile.TemporaryDirectory() as tmp:
            policy = fault_policy(urls)
            db = Path(tmp) / "log.db"
            store = SqliteStore(db)
            app = create_app(compose(Router(policy, store=store, classifier=False)))
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                client = await _call(listening_url(site, "127.0.0.1"), streamed)
                await store.flush()
                return _outcome(client, db)
            finally:
                await runner.cleanup()


@dataclass(frozen=True, slots=True)
class _Client:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


async def _call(url: str, streamed: bool) -> _Client:
    body = {"model": "auto", "messages": [{"role": "user", "content": "say hello"}],
            "stream": streamed}
    started = time.monotonic()
    async with aiohttp.ClientSession() as client, client.post(
        url + "/v1/chat/completions", json=body, timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        data = bytearray()
        with contextlib.suppress(aiohttp.ClientPayloadError):  # the stream broke off
            async for part in resp.content.iter_any():
                data += part
        return _Client(resp.status, dict(resp.headers), bytes(data),
                       time.monotonic() - started)


def _outcome(client: _Client, db: Path) -> Outcome:
    done: bool | None = None
    error_type: str | None = None
    content = False
    if client.headers.get("Content-Type", "").startswith("text/event-stream"):
        done = False
        for line in client.body.decode("utf-8", "replace").splitlines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                done = True
                continue
            event = json.loads(data)
            if "error" in event:
                error_type = event["error"]["type"]
            for choice in event.get("choices", []):
                content = content or bool((choice.get("delta") or {}).get("content"))
    else:
        payload = json.loads(client.body)
        if "error" in payload:
            error_type = payload["error"]["type"]
        else:
            content = bool(payload["choices"][0]["message"].get("content"))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = list(conn.execute("SELECT request_id, status, http_status, answered_by "
                                 "FROM requests"))
        assert len(rows) == 1, rows
        request_id, log_status, log_http, answered_by = rows[0]
        attempts = tuple(f"{d} {r} {s}" for d, r, s in conn.execute(
            "SELECT deployment, role, status FROM attempts WHERE request_id = ? ORDER BY seq",
            (request_id,)))
    return Outcome(client.status, done, error_type, content, client.headers.get("Retry-After"),
                   log_status, log_http, answered_by, attempts, round(client.seconds, 2))
