"""Cost and escalations per hour, against what sending everything to the strongest model would
have cost (the policy's last tier's first pick, priced at the tokens of each request's first
attempt). Read from the hourly rollups: buckets are whole hours (UTC)."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from taskroute.policy.model import Policy

_SQL = """
SELECT hour, SUM(requests), SUM(cost_usd), SUM(escalated), SUM(baseline_tokens_in),
       SUM(baseline_tokens_out)
FROM route_hourly WHERE hour >= ? GROUP BY hour ORDER BY hour
"""


def hourly(conn: sqlite3.Connection, policy: Policy, since: float | None) -> dict[str, Any]:
    strongest = policy.tiers[-1].model
    price = policy.models[strongest].price
    first = -math.inf if since is None else math.floor(since / 3600)
    points = []
    for hour, requests, cost, escalated, tokens_in, tokens_out in conn.execute(_SQL, (first,)):
        points.append({
            "hour": int(hour) * 3600, "requests": int(requests), "cost_usd": round(cost, 8),
            "baseline_usd": round((tokens_in * price.input + tokens_out * price.output) / 1e6, 8),
            "escalated": int(escalated),
        })
    return {"baseline_model": strongest, "points": points,
            "cost_usd": round(sum(p["cost_usd"] for p in points), 8),
            "baseline_usd": round(sum(p["baseline_usd"] for p in points), 8)}
