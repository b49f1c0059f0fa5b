"""What the tracing tests share: the client's trace context, one request through the gateway
with the official `openai` SDK, and a policy whose chat answers a judge grades."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import openai

from taskroute.policy.model import GateSpec, ModelSpec, Policy, Price
from tests.gateway.conftest import RunningGateway

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
PROMPT = "[difficulty=0.1] please say hello to the tracing test"


async def ask(gateway: RunningGateway, model: str, **headers: str) -> str:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="none", max_retries=0,
                                  timeout=20) as client:
        answer = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=40,
            extra_headers=headers)
    return answer.choices[0].message.content or ""


# in no chain, so its calls are the judge's alone; no digit in its name, which the stand-in's
# answer starts with (`grader answers: ...`), so the question's number is the first it gives
JUDGE, JUDGE_UPSTREAM = "openai/grader", "grader"


def judged_chat(policy: Policy) -> Policy:
    """The chat task's answers graded by a judge that wants 7/10."""
    chat = policy.tasks["chat"]
    gate = GateSpec("judge", MappingProxyType({"model": JUDGE, "min_score": 7}))
    chat = dataclasses.replace(chat, gates=(*chat.gates, gate))
    grader = ModelSpec(JUDGE, "strong", Price(input=3.0, output=12.0), context=128_000)
    return dataclasses.replace(
        policy, tasks=MappingProxyType({**policy.tasks, "chat": chat}),
        models=MappingProxyType({**policy.models, JUDGE: grader}))
