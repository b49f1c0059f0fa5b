"""What the tracing tests share: the client's trace context and one request through the
gateway with the official `openai` SDK."""

from __future__ import annotations

import openai

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
