"""Helpers for the call-path tests: a small policy pointing at the stand-in upstream on
127.0.0.1, with tiny timeouts and backoffs so every test is fast and bounded."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from taskroute.decision import Decision
from taskroute.policy.loader import parse_policy
from taskroute.policy.model import Policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.records import RouteRecord
from taskroute.request import ChatRequest
from taskroute.response import StreamChunk
from taskroute.router import Router
from taskroute.store.base import LogEntry, Refusal

POLICY = """
name: calling-tests
providers:
  sim: {{api: openai, base url: '{url}/v1'}}
  alt: {{api: openai, base url: '{url}/v1'}}
  ant: {{api: anthropic, base url: '{url}'}}
models:
  sim/small: {{tier: fast, price: {{input: 1, output: 2}}, also at: [alt/small-b]}}
  alt/small-b: {{tier: fast, price: {{input: 1, output: 2}}}}
  sim/medium: {{tier: balanced, price: {{input: 5, output: 10}}}}
  sim/large: {{tier: strong, price: {{input: 20, output: 40}}}}
  ant/claude-sim: {{tier: strong, price: {{input: 20, output: 40}}}}
tiers:
  fast: {{use: sim/small, escalate to: [sim/medium, sim/large]}}
  balanced: {{use: sim/medium, escalate to: [sim/large]}}
  strong: {{use: sim/large}}
tasks:
  extraction: {{tier: fast, gates: [non_empty, valid_json_if_asked, schema, not_truncated]}}
  chat: {{tier: fast, gates: [non_empty, refusal, not_truncated]}}
  classification:
    tier: fast
    gates: [non_empty, refusal]
    race: {{against: sim/large, min confidence: 0.8}}
  summarization: {{tier: fast, gates: [non_empty, refusal, not_truncated], buffer stream: true}}
  qa: {{tier: fast, gates: [non_empty, {{judge: {{model: sim/large, min score: 7}}}}]}}
classifier: false
when unsure: chat
calling:
  timeouts: {{connect: 1s, first token: {first_token}, stall: {stall}, total: 5s}}
  retries: {retries}
  backoff: {{first: 5ms, max: 40ms}}
  circuit breaker: {{failures: {failures}, cool down: {cooldown}}}
{calling_extra}
"""


def make_policy(
    upstream: SimulatedUpstream, *, retries: int = 1, failures: int = 3,
    cooldown: str = "200ms", first_token: str = "2s", calling_extra: str = "",
    stall: str = "5s",
) -> Policy:
    return parse_policy(POLICY.format(
        url=upstream.url, retries=retries, failures=failures, cooldown=cooldown,
        first_token=first_token, calling_extra=calling_extra, stall=stall,
    ), file="<test policy>")


RouterFactory = Callable[..., Router]


class MemoryStore:
    """A `Store` that keeps entries in a list."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.shadows: list[tuple[str, Decision]] = []
        self.refused: list[Refusal] = []

    def add(self, entry: LogEntry) -> None:
        self.entries.append(entry)

    def add_refused(self, refusal: Refusal) -> None:
        self.refused.append(refusal)

    def add_shadow(self, request_id: str, decision: Decision,
                   served: RouteRecord | None = None) -> None:
        self.shadows.append((request_id, decision))

    async def acknowledged(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def read(stream: AsyncIterator[StreamChunk]) -> tuple[str, list[StreamChunk]]:
    """A stream read to its end: its text, and its chunks."""
    chunks = [chunk async for chunk in stream]
    return "".join(c.delta_text for c in chunks), chunks


def ask(text: str = "hello there", **fields: Any) -> ChatRequest:
    return ChatRequest.from_prompt(text, **fields)


def assert_all_recorded(record: RouteRecord, upstream: SimulatedUpstream) -> None:
    """Every request the upstream saw is an attempt in the record (skips reached nobody)."""
    called = [a for a in record.attempts if a.status != "skipped"]
    assert len(called) == sum(upstream.requests.values()), (record.attempts, upstream.requests)
    refused = [a for a in called if re.search(r"^RateLimited|answered (5\d\d|429)", a.error or "")]
    assert all(a.cost_usd == 0 for a in refused), record.attempts  # 5xx and 429: not billed
    assert all(a.cost_usd > 0 for a in called if a not in refused), record.attempts


async def eventually(condition: Callable[[], bool], within_s: float = 2.0) -> bool:
    """Poll `condition` (the upstream notices a hang-up a moment after we close)."""
    for _ in range(int(within_s / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()
