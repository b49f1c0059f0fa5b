"""A raced task through the gateway, with the official `openai` SDK asking for no logprobs:
the answer carries none, and the log names what the race's confidence came from."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import openai

from taskroute.policy.model import Policy, RaceSpec
from tests.gateway.conftest import StartGateway


def racing_chat(policy: Policy) -> Policy:
    chat = dataclasses.replace(policy.tasks["chat"], race=RaceSpec("openai/gpt-4.1", 0.9))
    return dataclasses.replace(policy, tasks=MappingProxyType({**policy.tasks, "chat": chat}))


async def test_a_raced_answer_has_no_logprobs_the_client_did_not_ask_for(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=racing_chat)
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=10) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="taskroute/chat",
            messages=[{"role": "user", "content": "[difficulty=0.1] hello there"}])
    body = raw.http_response.json()
    assert body["choices"][0].get("logprobs") is None
    (row,) = await gateway.log_rows()
    assert row["race_winner"] == "cheap" and row["confidence_source"] == "logprobs"
