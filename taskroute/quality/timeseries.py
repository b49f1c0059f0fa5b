"""Cost and escalations per hour or per minute, against what sending everything to the strongest
model would have cost (the policy's last tier's first pick, priced at each request's tokens per
attempt). Buckets are whole hours or minutes (UTC); a `LogReader` (`taskroute.store`) sums the
rows — hours from the hourly rollups, minutes from the minute rollups, which keep the last
`MINUTES_KEPT_S` only. `filled` gives a window every bucket, empty ones as zeros, so a chart of
a fresh deployment has its axes from the start."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

from taskroute.policy.model import Policy, Price

# bucket (unix hours or minutes), requests, cost_usd, escalated, tokens in, tokens out per attempt
HourRow = tuple[int, int, float, int, float, float]
Step = Literal["minute", "hour"]
STEP_S: dict[Step, int] = {"minute": 60, "hour": 3600}
MINUTES_KEPT_S = 48 * 3600      # how far back minute buckets go
MINUTE_WINDOWS_S = 6 * 3600     # `auto`: minutes for windows up to this long, hours beyond
MAX_FILLED = 2000               # a longer window is left sparse


def baseline(policy: Policy) -> tuple[str, Price]:
    """The strongest model (the last tier's first pick) and its price."""
    strongest = policy.tiers[-1].model
    return strongest, policy.models[strongest].price


def choose_step(asked: str, since_s: float | None) -> Step:
    """`minute`, `hour`, or `auto`: minutes for a window of up to six hours, else hours."""
    if asked == "auto":
        return "minute" if since_s is not None and since_s <= MINUTE_WINDOWS_S else "hour"
    if asked not in STEP_S:
        raise ValueError(f"'step' is minute, hour or auto, not {asked!r}")
    if asked == "minute" and (since_s is None or since_s > MINUTES_KEPT_S):
        raise ValueError("minute buckets are kept for the last 48 hours: ask for a window "
                         "within them (since=6h, say) or for step=hour")
    return "minute" if asked == "minute" else "hour"


def hourly(rows: Iterable[HourRow], baseline_model: str, price: Price) -> dict[str, Any]:
    """The time series from hourly sums, oldest hour first."""
    return series(rows, baseline_model, price, "hour")


def series(rows: Iterable[HourRow], baseline_model: str, price: Price,
           step: Step) -> dict[str, Any]:
    """The time series from per-bucket sums, oldest first; each point's `t` is its bucket's
    start (unix seconds), and hourly points keep `hour` (the same) too."""
    step_s = STEP_S[step]
    points = []
    for bucket, requests, cost, escalated, tokens_in, tokens_out in rows:
        point = {"t": int(bucket) * step_s, "requests": int(requests),
                 "cost_usd": round(cost, 8),
                 "baseline_usd": round((tokens_in * price.input + tokens_out * price.output) / 1e6,
                                       8),
                 "escalated": int(escalated)}
        if step == "hour":
            point["hour"] = point["t"]
        points.append(point)
    return {"baseline_model": baseline_model, "step": step, "step_s": step_s, "points": points,
            "cost_usd": round(sum(p["cost_usd"] for p in points), 8),
            "baseline_usd": round(sum(p["baseline_usd"] for p in points), 8)}


def filled(report: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """`report` with a point for every bucket from `start` to `end`, zeros where nothing was
    logged, and `saved_usd` (what routing saved against the baseline, summed up to each point)
    on each; left sparse if that would be more than `MAX_FILLED` points."""
    step_s = int(report["step_s"])
    first, last = math.floor(start / step_s), math.floor(end / step_s)
    by_t = {p["t"]: p for p in report["points"]}
    if last - first + 1 > MAX_FILLED:
        points = list(report["points"])
    else:
        zero = {"requests": 0, "cost_usd": 0.0, "baseline_usd": 0.0, "escalated": 0}
        points = []
        for bucket in range(first, last + 1):
            t = bucket * step_s
            point = by_t.get(t) or {"t": t, **zero}
            if report["step"] == "hour":
                point = {**point, "hour": t}
            points.append(point)
    saved = 0.0
    for i, point in enumerate(points):
        saved += point["baseline_usd"] - point["cost_usd"]
        points[i] = {**point, "saved_usd": round(saved, 8)}
    return {**report, "points": points, "start": first * step_s, "end": last * step_s,
            "saved_usd": round(report["baseline_usd"] - report["cost_usd"], 8)}
