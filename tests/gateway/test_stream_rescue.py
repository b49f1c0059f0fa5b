"""A stream rescued mid-answer, end to end: the official `anthropic` and `openai` SDKs as the
clients, the gateway, a first pick (OpenAI wire) that drops the connection once its opening has
gone out, and a fallback (Anthropic wire, its own stand-in serving the same model) that
continues. The client sees one uninterrupted answer that ends normally, with the usage of the
whole of it; the log keeps both attempts and the seam."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from taskroute.policy.loader import parse_policy
from taskroute.policy.model import Policy
from taskroute.providers.simulated import SimulatedUpstream
from tests.gateway.conftest import RunningGateway, StartGateway

PROMPT = "tell me about " + " ".join(f"word{i}" for i in range(12))
ANSWER = "m answers: tell me about word0 word1 word2 word3 word4."   # the stand-ins' `m`
SENT = "m answers: tell me about word0 word1 word2 "   # the role and 8 words, then the drop
POLICY = """
name: rescue-end-to-end
providers:
  first: {{api: openai, base url: '{first}/v1', simulated: true}}
  backup: {{api: anthropic, base url: '{backup}', simulated: true}}
models:
  first/m: {{tier: fast, price: {{input: 1, output: 2}}}}
  backup/m: {{tier: strong, price: {{input: 20, output: 40}}}}
tiers:
  fast: {{use: first/m, escalate to: [backup/m]}}
  strong: {{use: backup/m}}
tasks:
  chat: {{tier: fast, gates: [non_empty, refusal, not_truncated]}}
classifier: false
when unsure: chat
calling:
  timeouts: {{connect: 1s, first token: 2s, total: 5s}}
  retries: 0
"""


@pytest.fixture
async def backup() -> AsyncIterator[SimulatedUpstream]:
    async with SimulatedUpstream() as up:
        yield up


@pytest.fixture
async def gateway(start_gateway: StartGateway, simulated_upstream: SimulatedUpstream,
                  backup: SimulatedUpstream) -> RunningGateway:
    def ours(_: Policy) -> Policy:
        return parse_policy(POLICY.format(first=simulated_upstream.url, backup=backup.url),
                            file="<rescue end to end>")

    # the first pick's 9th event never comes: the role and 8 words (past the refusal hold's
    # 40 characters, so they went out) and then the connection is gone
    simulated_upstream.drop_connection("m", after=9)
    return await start_gateway(edit_policy=ours)


async def _logged(gw: RunningGateway) -> tuple[dict[str, object], list[tuple[str, ...]]]:
    (row,) = await gw.log_rows()
    attempts = await gw.log_rows(
        "SELECT deployment, role, status, input_tokens, output_tokens FROM attempts "
        "ORDER BY seq")
    return dict(row), [tuple(a) for a in attempts]


async def test_the_anthropic_sdk_sees_one_answer_through_a_rescue(
    gateway: RunningGateway, backup: SimulatedUpstream
) -> None:
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="none", max_retries=0,
                                        timeout=10) as client, client.messages.stream(
        model="auto", max_tokens=200, messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("message_delta") == 1 and kinds.count("content_block_start") == 1
    (block,) = final.content
    assert isinstance(block, anthropic.types.TextBlock)
    assert block.text == ANSWER and final.stop_reason == "end_turn"
    # the fallback was asked to go on from what was sent: an assistant prefill
    turns = backup.last_body["m"]["messages"]
    prefill = turns[-1]["content"]
    assert turns[-1]["role"] == "assistant"
    assert (prefill if isinstance(prefill, str) else prefill[0]["text"]) == SENT.rstrip()
    row, attempts = await _logged(gateway)
    assert (row["status"], row["http_status"], row["api"]) == ("ok", 200, "anthropic")
    assert row["rescued_by"] == "backup/m" and row["seam_chars"] == len(SENT)
    assert [a[:3] for a in attempts] == [("first/m", "first", "error"),
                                         ("backup/m", "rescue", "ok")]
    # the usage the client got is the whole answer's: both calls', as the log sums them
    assert final.usage.output_tokens == sum(int(a[4]) for a in attempts)


async def test_the_openai_sdk_sees_one_answer_through_a_rescue(gateway: RunningGateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=10) as client:
        stream = await client.chat.completions.create(
            model="auto", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": PROMPT}])
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks
                if c.choices and c.choices[0].finish_reason]
    assert text == ANSWER and finishes == ["stop"]
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    row, attempts = await _logged(gateway)
    assert (row["status"], row["rescued_by"], row["seam_chars"]) == ("ok", "backup/m", len(SENT))
    assert [a[:3] for a in attempts] == [("first/m", "first", "error"),
                                         ("backup/m", "rescue", "ok")]
    assert usage.completion_tokens == sum(int(a[4]) for a in attempts)
    assert usage.prompt_tokens == sum(int(a[3]) for a in attempts)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
