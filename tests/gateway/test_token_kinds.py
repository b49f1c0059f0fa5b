"""Cached, cache-written and reasoning tokens are recorded apart and priced at their own rates:
in the attempt, the log, the response headers and the stats (both upstream wire formats)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from taskroute.policy.loader import load_default_policy, parse_policy
from taskroute.policy.model import Price
from taskroute.providers.simulated import ModelProfile
from tests.gateway.conftest import RunningGateway

MINI = "openai/gpt-4.1-mini"            # 0.40 in, 0.10 cached in, 1.60 out
HAIKU = "anthropic/claude-haiku-4-5"    # 1.00 in, 0.10 cache read, 1.25 cache write, 5.00 out
LONG = "Background you must keep in mind. " * 200   # ~1,700 simulated tokens: cacheable


def test_price_charges_cache_reads_and_writes_at_their_own_rates() -> None:
    price = Price(input=1.0, output=5.0, cached_input=0.1, cache_write=1.25)
    # 1000 input tokens: 600 read from the cache, 300 written, 100 plain; 10 output
    assert price.cost(1000, 10, cached_input_tokens=600, cache_write_tokens=300) == \
        pytest.approx((100 * 1.0 + 600 * 0.1 + 300 * 1.25 + 10 * 5.0) / 1e6)
    assert Price(1.0, 5.0).cost(1000, 0, cached_input_tokens=600) == pytest.approx(1000 / 1e6)


def test_policy_prices_take_cached_input_and_cache_write() -> None:
    policy = parse_policy("""
models:
  p/m: {tier: t, price: {input: 3, output: 15, cached input: 0.3, cache write: 3.75}}
tiers: {t: {use: p/m}}
tasks: {chat: t}
""")
    assert policy.models["p/m"].price == Price(3, 15, cached_input=0.3, cache_write=3.75)
    default = load_default_policy().models
    assert default[MINI].price.cached_input == 0.10 and default[MINI].price.cache_write is None
    assert default[HAIKU].price == Price(1.0, 5.0, cached_input=0.10, cache_write=1.25)


def expected_cost(usage: dict[str, Any], price: Price) -> float:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    return price.cost(usage["prompt_tokens"], usage["completion_tokens"],
                      cached_input_tokens=cached, cache_write_tokens=write)


async def test_openai_cached_and_reasoning_tokens_are_recorded_and_priced(
    gateway: RunningGateway,
) -> None:
    gateway.upstream.set_profile("gpt-4.1-mini", ModelProfile(reasoning_tokens=40))
    messages: Any = [{"role": "system", "content": LONG},
                     {"role": "user", "content": "hello there"}]
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none",
                                  max_retries=0) as c:
        await c.chat.completions.create(model=MINI, messages=messages)      # writes the cache
        raw = await c.chat.completions.with_raw_response.create(model=MINI, messages=messages)
    usage = json.loads(raw.text)["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert cached > 1000 and usage["completion_tokens_details"]["reasoning_tokens"] == 40
    cost = expected_cost(usage, load_default_policy().models[MINI].price)
    full_price = Price(0.40, 1.60).cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost < full_price * 0.5
    headers = raw.headers
    assert float(headers["x-taskroute-cost-usd"]) == pytest.approx(cost, abs=1e-8)
    assert headers["x-taskroute-input-tokens"] == str(usage["prompt_tokens"])
    assert headers["x-taskroute-cached-input-tokens"] == str(cached)
    assert headers["x-taskroute-cache-write-tokens"] == "0"
    assert headers["x-taskroute-reasoning-tokens"] == "40"
    request_id = headers["x-taskroute-request-id"]
    (row,) = await gateway.log_rows(
        f"SELECT * FROM attempts WHERE request_id = '{request_id}'")
    assert (row["input_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]) == (
        usage["prompt_tokens"], cached, 40)
    assert row["cost_usd"] == pytest.approx(cost, abs=1e-9)
    (logged,) = await gateway.log_rows(
        f"SELECT * FROM requests WHERE request_id = '{request_id}'")
    assert logged["cached_input_tokens"] == cached and logged["reasoning_tokens"] == 40
    status, _, body = await gateway.request("GET", "/v1/taskroute/stats?since=1h&by=model")
    assert status == 200
    (stats,) = json.loads(body)["rows"]
    assert stats["tokens"]["cached_input"] == cached
    assert stats["tokens"]["reasoning"] == 80
    assert stats["tokens"]["output"] >= 80


async def test_anthropic_cache_reads_and_writes_are_recorded_and_priced(
    gateway: RunningGateway,
) -> None:
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="none",
                                        max_retries=0) as c:
        first = await c.messages.with_raw_response.create(
            model=HAIKU, max_tokens=100, system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "hello there"}])
        second = await c.messages.with_raw_response.create(
            model=HAIKU, max_tokens=100, system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "hello again"}])
    price = load_default_policy().models[HAIKU].price
    for raw, kind in ((first, "cache_creation_input_tokens"),
                      (second, "cache_read_input_tokens")):
        usage = json.loads(raw.http_response.text)["usage"]
        assert usage[kind] > 1000, usage
        cached, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        total_in = usage["input_tokens"] + cached + write
        cost = price.cost(total_in, usage["output_tokens"], cached_input_tokens=cached,
                          cache_write_tokens=write)
        assert float(raw.headers["x-taskroute-cost-usd"]) == pytest.approx(cost, abs=1e-8)
        assert raw.headers["x-taskroute-cached-input-tokens"] == str(cached)
        assert raw.headers["x-taskroute-cache-write-tokens"] == str(write)
    rows = await gateway.log_rows("SELECT * FROM attempts ORDER BY started_at")
    assert rows[0]["cache_write_tokens"] > 1000 and rows[0]["cached_input_tokens"] == 0
    assert rows[1]["cached_input_tokens"] > 1000 and rows[1]["cache_write_tokens"] == 0


async def test_messages_stream_reports_usage_in_message_start_and_delta(
    gateway: RunningGateway,
) -> None:
    events: list[Any] = []
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="none",
                                        max_retries=0) as c:
        for model in (HAIKU, MINI):   # an Anthropic upstream, then an OpenAI one
            async with c.messages.stream(
                model=model, max_tokens=100,
                messages=[{"role": "user", "content": "hello there, tell me about owls"}],
            ) as stream:
                events.append([event async for event in stream])
    for served in events:
        start = next(e for e in served if e.type == "message_start")
        delta = next(e for e in served if e.type == "message_delta")
        assert start.message.usage.input_tokens > 0
        assert delta.usage.input_tokens and delta.usage.input_tokens > 0
        assert delta.usage.output_tokens > 0
    # an Anthropic upstream's own count is known at the start (an OpenAI one's at the end)
    start, delta = (next(e for e in events[0] if e.type == kind)
                    for kind in ("message_start", "message_delta"))
    assert start.message.usage.input_tokens == delta.usage.input_tokens


@pytest.mark.parametrize("model", [MINI, HAIKU])
async def test_streamed_cache_reads_are_logged_and_priced(
    gateway: RunningGateway, model: str,
) -> None:
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    messages: Any = [{"role": "system", "content": system},
                     {"role": "user", "content": "hello there"}]
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none",
                                  max_retries=0) as c:
        for _ in range(2):
            stream = await c.chat.completions.create(
                model=model, messages=messages, stream=True,
                stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached > 1000
    assert all(chunk.usage is None for chunk in chunks[:-1])
    rows = await gateway.log_rows("SELECT * FROM attempts ORDER BY started_at")
    assert rows[-1]["cached_input_tokens"] == cached
    price = load_default_policy().models[model].price
    assert rows[-1]["cost_usd"] == pytest.approx(price.cost(
        usage.prompt_tokens, usage.completion_tokens, cached_input_tokens=cached), abs=1e-9)
