"""The demo's workload: the project's example prompts, sent through the gateway with the
official `openai` client, and the route table read back from the request log."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from taskroute.exceptions import ConfigError
from taskroute.policy.model import Policy
from taskroute.store.base import RequestRoute


def demo_prompts() -> list[dict[str, Any]]:
    """The bundled prompts: one JSON object a line, `prompt` plus optional `system`, `tools`."""
    text = resources.files("taskroute.data").joinpath("demo_prompts.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _messages(item: dict[str, Any]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": item["system"]}] if item.get("system") else []
    return [*messages, {"role": "user", "content": item["prompt"]}]


async def send_all(
    base_url: str, items: list[dict[str, Any]], *, concurrency: int = 6,
) -> list[str]:
    """Send each prompt (every other one streamed); returns the request ids, in order."""
    try:
        import openai
    except ImportError:
        raise ConfigError("the demo drives the gateway with the official openai client: "
                          "pip install 'taskroute[demo]'") from None
    limit = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="demo-no-key-needed",
                                  max_retries=0, timeout=60) as client:
        async def one(i: int, item: dict[str, Any]) -> str:
            extra: dict[str, Any] = {"tools": item["tools"]} if item.get("tools") else {}
            async with limit:
                if i % 2:
                    async with client.chat.completions.with_streaming_response.create(
                        model="auto", messages=_messages(item), stream=True,  # type: ignore[arg-type]
                        **extra,
                    ) as response:
                        async for _ in response.iter_lines():
                            pass
                        return str(response.headers["x-taskroute-request-id"])
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto", messages=_messages(item), **extra)  # type: ignore[arg-type]
                raw.parse()
                return str(raw.headers["x-taskroute-request-id"])

        return list(await asyncio.gather(*(one(i, it) for i, it in enumerate(items))))


@dataclass
class Route:
    task: str
    models: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    escalations: int = 0
    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    cost: float = 0.0
    strongest_cost: float = 0.0


def route_table(rows: Iterable[RequestRoute], policy: Policy) -> list[Route]:
    """Per task class, from the log's rows (`LogReader.request_routes`): models, escalations,
    latencies, cost and what sending everything to the strongest model would have cost for
    the same tokens."""
    strongest = policy.models[policy.tiers[-1].model]
    routes: dict[str, Route] = {}
    for row in rows:
        route = routes.setdefault(row.task, Route(row.task))
        route.requests += 1
        model = row.answered_by or "-"
        route.models[model] = route.models.get(model, 0) + 1
        route.escalations += int(row.escalated)
        route.latencies.append(row.latency_s)
        if row.first_token_s is not None:
            route.first_tokens.append(row.first_token_s)
        route.cost += row.cost_usd
        route.strongest_cost += strongest.price.cost(row.input_tokens, row.output_tokens)
    order = list(policy.tasks)
    return sorted(routes.values(), key=lambda r: order.index(r.task) if r.task in order else 99)


def format_table(routes: list[Route], strongest: str) -> str:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:,.0f} ms" if values else "-"

    header = (f"{'task class':<15} {'model':<28} {'reqs':>4} {'escal.':>6} {'p50 latency':>12} "
              f"{'p50 1st token':>13} {'cost':>11}")
    lines = [header, "-" * len(header)]
    for r in routes:
        model = max(r.models, key=lambda m: r.models[m])
        if len(r.models) > 1:
            model += f" +{len(r.models) - 1}"
        lines.append(f"{r.task:<15} {model:<28} {r.requests:>4} {r.escalations:>6} "
                     f"{ms(r.latencies):>12} {ms(r.first_tokens):>13} ${r.cost:>10.6f}")
    total = sum(r.cost for r in routes)
    strong = sum(r.strongest_cost for r in routes)
    lines.append("-" * len(header))
    lines.append(f"{'all':<15} {'':<28} {sum(r.requests for r in routes):>4} "
                 f"{sum(r.escalations for r in routes):>6} "
                 f"{ms([x for r in routes for x in r.latencies]):>12} "
                 f"{ms([x for r in routes for x in r.first_tokens]):>13} ${total:>10.6f}")
    saved = (1 - total / strong) if strong else 0.0
    lines.append(f"\nEverything sent to the strongest model ({strongest}) would have cost "
                 f"${strong:.6f} for the same tokens: routing spent {saved:.0%} less.")
    return "\n".join(lines)


def elapsed_since(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"
