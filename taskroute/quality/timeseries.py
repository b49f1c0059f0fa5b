"""Cost and escalations per hour, against what sending everything to the strongest model would
have cost (the policy's last tier's first pick, priced at the tokens of each request's first
attempt). Buckets are whole hours (UTC); a `LogReader` (`taskroute.store`) sums the rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskroute.policy.model import Policy, Price

# hour (unix hours), requests, cost_usd, escalated, first-attempt tokens in, tokens out
HourRow = tuple[int, int, float, int, float, float]


def baseline(policy: Policy) -> tuple[str, Price]:
    """The strongest model (the last tier's first pick) and its price."""
    strongest = policy.tiers[-1].model
    return strongest, policy.models[strongest].price


def hourly(rows: Iterable[HourRow], baseline_model: str, price: Price) -> dict[str, Any]:
    """The time series from hourly sums, oldest hour first."""
    points = []
    for hour, requests, cost, escalated, tokens_in, tokens_out in rows:
        points.append({
            "hour": int(hour) * 3600, "requests": int(requests), "cost_usd": round(cost, 8),
            "baseline_usd": round((tokens_in * price.input + tokens_out * price.output) / 1e6, 8),
            "escalated": int(escalated),
        })
    return {"baseline_model": baseline_model, "points": points,
            "cost_usd": round(sum(p["cost_usd"] for p in points), 8),
            "baseline_usd": round(sum(p["baseline_usd"] for p in points), 8)}
