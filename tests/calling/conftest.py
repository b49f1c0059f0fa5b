"""A small policy pointing at the stand-in upstream on 127.0.0.1, with tiny timeouts and
backoffs so every test is fast and bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from taskroute.policy.loader import parse_policy
from taskroute.policy.model import Policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router

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
  timeouts: {{connect: 1s, first token: {first_token}, total: 5s}}
  retries: {retries}
  backoff: {{first: 5ms, max: 40ms}}
  circuit breaker: {{failures: {failures}, cool down: {cooldown}}}
{extra}
"""


def make_policy(
    upstream: SimulatedUpstream, *, retries: int = 1, failures: int = 3,
    cooldown: str = "200ms", first_token: str = "2s", extra: str = "",
) -> Policy:
    return parse_policy(POLICY.format(
        url=upstream.url, retries=retries, failures=failures, cooldown=cooldown,
        first_token=first_token, extra=extra,
    ), file="<test policy>")


RouterFactory = Callable[..., Router]


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


@pytest.fixture
async def make_router(upstream: SimulatedUpstream) -> AsyncIterator[RouterFactory]:
    """Build routers over the stand-in upstream; all are closed after the test."""
    made: list[Router] = []

    def build(**policy_kw: object) -> Router:
        router_kw = {k: policy_kw.pop(k) for k in ("store", "gates") if k in policy_kw}
        router = Router(make_policy(upstream, **policy_kw), classifier=False,  # type: ignore[arg-type]
                        **router_kw)  # type: ignore[arg-type]
        made.append(router)
        return router

    yield build
    for router in made:
        await router.aclose()
