"""The demo's route before the answer: a question streamed with `X-Taskroute-Route-Event: 1`,
its route's label printed the moment the route event arrives, then the answer as it streams."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from taskroute.exceptions import ConfigError

# One quick question and one the policy sends to its strongest tier (a high-stakes final answer).
QUESTIONS: tuple[tuple[str | None, str], ...] = (
    (None, "Hi! How are you today?"),
    ("Write the final answer to the customer.",
     "Explain what our new refund policy means for an order placed last week."),
)


async def show_route_first(
    base_url: str, write: Callable[[str], None], questions: tuple[tuple[str | None, str], ...]
    = QUESTIONS,
) -> None:
    """Stream each question through the gateway with the official openai client, writing
    `[label]` first, then the text, then when each arrived."""
    try:
        import openai
    except ImportError:
        raise ConfigError("the demo drives the gateway with the official openai client: "
                          "pip install 'taskroute[demo]'") from None
    async with openai.AsyncOpenAI(base_url=base_url, api_key="demo-no-key-needed",
                                  max_retries=0, timeout=60) as client:
        for system, question in questions:
            messages: list[Any] = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": question})
            start = time.perf_counter()
            route_at = text_at = None
            stream = await client.chat.completions.create(
                model="auto", messages=messages, stream=True,
                extra_headers={"X-Taskroute-Route-Event": "1"})
            write("  ")
            async for chunk in stream:
                route = getattr(chunk, "taskroute", None)  # the route chunk: no choices
                if isinstance(route, dict) and route.get("type") == "taskroute.route":
                    route_at = time.perf_counter() - start
                    write(f"[{route.get('label') or route.get('tier')}] ")
                for choice in chunk.choices:
                    if choice.delta.content:
                        text_at = text_at or time.perf_counter() - start
                        write(choice.delta.content)
            write(f"\n      (label after {_ms(route_at)}, first token after {_ms(text_at)})\n")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
