"""Context windows: a provider's context-length refusal (OpenAI's `context_length_exceeded`,
Anthropic's "prompt is too long", both sent by the simulated upstream in the vendors' own
shapes) is never retried and moves the request to a model with a larger window; when none is
left, the caller gets a 400 saying so."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import openai
import pytest

from taskroute.policy.model import Policy
from taskroute.providers.simulated.profiles import ModelProfile
from tests.gateway.conftest import RunningGateway, StartGateway

PROMPT = "Tell me about the history of the river Thames in London. " * 8  # ~120 tokens


def windows(sizes: Mapping[str, int]):  # type: ignore[no-untyped-def]
    def edit(policy: Policy) -> Policy:
        models = {m: dataclasses.replace(spec, context=sizes.get(m, spec.context))
                  for m, spec in policy.models.items()}
        return dataclasses.replace(policy, models=models)
    return edit


def client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="none", max_retries=0, timeout=10)


async def test_a_context_length_refusal_moves_to_a_larger_window_without_a_retry(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(edit_policy=windows({
        "openai/gpt-4.1-mini": 100_000, "anthropic/claude-haiku-4-5": 100_000}))
    gw.upstream.profiles["gpt-4.1-mini"] = ModelProfile(context_window=50)  # smaller than said
    async with client(gw) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": PROMPT}])
    assert raw.headers["x-taskroute-model"] == "openai/gpt-4.1"
    assert gw.upstream.requests["gpt-4.1-mini"] == 1        # refused once, never retried
    assert gw.upstream.requests["claude-haiku-4-5"] == 0    # no larger window: skipped
    attempts = await gw.log_rows("SELECT deployment, status, error FROM attempts ORDER BY seq")
    assert [(a["deployment"], a["status"]) for a in attempts] == [
        ("openai/gpt-4.1-mini", "error"), ("anthropic/claude-haiku-4-5", "skipped"),
        ("openai/gpt-4.1", "ok")]
    assert "maximum context length" in attempts[0]["error"]
    assert "ContextTooLong" in attempts[1]["error"]


async def test_anthropics_prompt_is_too_long_is_understood_the_same_way(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(edit_policy=windows({"anthropic/claude-opus-4-5": 100_000}))
    gw.upstream.profiles["claude-opus-4-5"] = ModelProfile(context_window=50)
    async with client(gw) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="anthropic/claude-opus-4-5",
            messages=[{"role": "user", "content": PROMPT}])
    # its other deployment (`also at`) has the larger window (400,000 tokens)
    assert raw.headers["x-taskroute-model"] == "openai/gpt-5"
    assert raw.headers["x-taskroute-stood-in-for"] == "anthropic/claude-opus-4-5"
    assert gw.upstream.requests["claude-opus-4-5"] == 1


async def test_when_every_window_refuses_the_caller_gets_a_400_saying_so(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    for name in ("gpt-4.1-mini", "claude-haiku-4-5", "gpt-4.1", "claude-sonnet-4-5",
                 "claude-opus-4-5", "gpt-5"):
        gw.upstream.profiles[name] = ModelProfile(context_window=50)
    async with client(gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": PROMPT}])
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "context_length_exceeded"
    rows = await gw.log_rows()
    assert [(r["http_status"], r["status"]) for r in rows] == [(400, "error")]


async def test_a_request_too_long_for_the_first_window_is_not_sent_to_it(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(edit_policy=windows({"openai/gpt-4.1-mini": 200}))
    async with client(gw) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": PROMPT}], max_tokens=150,
            extra_headers={"X-Taskroute-Explain": "1"})
    assert gw.upstream.requests["gpt-4.1-mini"] == 0
    assert raw.headers["x-taskroute-model"] == "openai/gpt-4.1"
    rows = await gw.log_rows()
    assert "Skipped openai/gpt-4.1-mini: its context window (200 tokens)" in rows[0]["decision"]
