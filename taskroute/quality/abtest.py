"""The A/B report: each variant against the first (the control) on every route-quality metric.

Rates (first pass, escalation, correction, upstream errors, misrouting) are compared with a
two-proportion z-test; cost per request and latency with a bootstrap of the difference in means
(per-request values, up to `BOOTSTRAP_SAMPLE` requests per variant, evenly spaced in the log).
"Needed" is how many requests per variant a test at 5% significance and 80% power would need
to detect the difference seen so far (never fewer than the test's own assumptions need), and
"more" how many that is beyond those already in.

A difference is significant only where the test can be trusted: the z-test's normal
approximation wants at least `MIN_EXPECTED` successes and failures expected in each variant
(under "no difference", so from the pooled rate; the rule of the equivalent 2×2 chi-square
test), the bootstrap at least `MIN_BOOTSTRAP` values per variant, and a difference smaller
than the values are told apart by (`resolution`: 1 ms for latency) is never significant.
Every result that is not significant says why.

Pure arithmetic: a `LogReader` (`taskroute.store`) reads the fine groups and the per-request
samples, then calls `per_variant`, `variant_names` and `compare`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taskroute.quality.metrics import Counts, FineKey, mark_over_served

Z_ALPHA = 1.959964  # two-sided 5%
Z_BETA = 0.841621   # 80% power
BOOTSTRAP_SAMPLE = 4000
BOOTSTRAP_ROUNDS = 1000
MIN_EXPECTED = 5     # z-test: successes and failures expected per variant under no difference
MIN_BOOTSTRAP = 30   # bootstrap: values per variant before its percentile interval is trusted
LATENCY_RESOLUTION_S = 0.001   # the report tells latencies apart to the millisecond
COST_RESOLUTION_USD = 1e-8     # and costs to the report's eighth decimal

# rate name → (successes, trials) from a variant's counts, and what the trials are
RATES: dict[str, tuple[Callable[[Counts], tuple[int, int]], str]] = {
    "first_pass": (lambda c: (c.first_pass, c.requests), "requests"),
    "escalation": (lambda c: (c.escalated, c.requests), "requests"),
    "correction": (lambda c: (c.corrected, c.feedback), "feedback"),
    "upstream_error": (lambda c: (c.errors, c.attempts), "attempts"),
    "misrouting": (lambda c: (c.under_served + c.over_served, c.requests), "requests"),
}


def two_proportions(
    x1: int, n1: int, x2: int, n2: int, *, counted: str = "requests"
) -> dict[str, Any]:
    """Variant 2 against variant 1: difference, 95% interval, z, p-value, the requests per
    variant needed to detect a difference this large, and why it is not significant if not.
    `counted` names the trials, for that reason."""
    if not n1 or not n2:
        return {"a": None, "b": None, "difference": None, "significant": False,
                "why": f"no {counted} to compare: {n1} and {n2}"}
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p2 - p1
    z = diff / se_pooled if se_pooled else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    rarer = min(pooled, 1 - pooled)
    assumed = math.ceil(MIN_EXPECTED / rarer - 1e-9) if rarer else None  # per variant
    needed = None
    if diff:
        powered = math.ceil(
            (Z_ALPHA * math.sqrt(2 * pooled * (1 - pooled))
             + Z_BETA * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / diff ** 2
        )
        needed = max(powered, assumed or 0)
    why = None
    if assumed is not None and min(n1, n2) < assumed:
        why = _too_few(counted, n1, n2, needed or assumed)
    elif p_value >= 0.05:
        why = f"p = {p_value:.2g}, not below 0.05"
    return {
        "a": round(p1, 6), "b": round(p2, 6), "difference": round(diff, 6),
        "ci95": [round(diff - Z_ALPHA * se, 6), round(diff + Z_ALPHA * se, 6)],
        "z": round(z, 4), "p_value": round(p_value, 6), "significant": why is None,
        "why": why, "needed_per_variant": needed,
        "more_needed": None if needed is None else max(0, needed - min(n1, n2)),
        "test": "two-proportion z-test",
    }


def bootstrap_means(
    a: Sequence[float], b: Sequence[float], *, resolution: float = 0.0, unit: str = "",
    counted: str = "requests", rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0,
) -> dict[str, Any]:
    """Difference of means (b − a) with a 95% percentile-bootstrap interval; significant only
    with `MIN_BOOTSTRAP` values on each side and a difference of at least `resolution`
    (`unit` names the values' unit, and `counted` what they were measured on, for the why)."""
    if len(a) < 2 or len(b) < 2:
        return {"a": None, "b": None, "difference": None, "significant": False,
                "why": _too_few(counted, len(a), len(b), MIN_BOOTSTRAP)}
    rng = random.Random(seed)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    diffs = sorted(
        sum(rng.choices(b, k=len(b))) / len(b) - sum(rng.choices(a, k=len(a))) / len(a)
        for _ in range(rounds)
    )
    low, high = diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]
    diff = mean_b - mean_a
    var = (_variance(a) + _variance(b)) / 2
    resolved = diff != 0 and abs(diff) >= resolution * (1 - 1e-9)  # float noise
    needed = max(math.ceil(2 * (Z_ALPHA + Z_BETA) ** 2 * var / diff ** 2),
                 MIN_BOOTSTRAP) if resolved else None
    why = None
    if not resolved:
        why = (f"the difference ({abs(diff):.3g}{unit}) is below the resolution of "
               f"{resolution:g}{unit}" if diff else "no difference")
    elif min(len(a), len(b)) < MIN_BOOTSTRAP:
        why = _too_few(counted, len(a), len(b), needed or MIN_BOOTSTRAP)
    elif low <= 0 <= high:
        why = "the 95% interval includes no difference"
    return {
        "a": round(mean_a, 8), "b": round(mean_b, 8), "difference": round(diff, 8),
        "ci95": [round(low, 8), round(high, 8)], "significant": why is None, "why": why,
        "needed_per_variant": needed, "test": f"bootstrap ({rounds} rounds)",
    }


def _too_few(counted: str, n1: int, n2: int, needed: int) -> str:
    return f"too few {counted}: {n1} and {n2}; about {needed} per variant needed"


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


Samples = tuple[list[float], list[float]]  # a variant's costs (all requests), latencies (ok)


def sample_stride(requests: int) -> int:
    """Take every n-th request, so about `BOOTSTRAP_SAMPLE` of `requests` are drawn."""
    return max(1, requests // BOOTSTRAP_SAMPLE)


def per_variant(groups: dict[FineKey, Counts], tier_order: Sequence[str] = ()) -> dict[str, Counts]:
    """The fine groups summed per variant ('' for requests served outside an experiment)."""
    mark_over_served(groups, tier_order)
    counts: dict[str, Counts] = {}
    for (_, _, _, _, variant), c in groups.items():
        counts.setdefault(variant, Counts()).add(c)
    return counts


def variant_names(counts: Mapping[str, Counts], variants: Sequence[str] = ()) -> list[str]:
    """The variants to report, control first: the policy's order, then any others seen."""
    return [v for v in variants if v in counts] + sorted(
        v for v in counts if v not in variants and v)


def compare(
    counts: Mapping[str, Counts], names: Sequence[str], samples: Mapping[str, Samples]
) -> dict[str, Any]:
    """The A/B report: each of `names` after the first against the first. `samples` holds
    each named variant's per-request values (only needed with two variants or more)."""
    if len(names) < 2:
        return {"variants": list(names), "comparisons": [],
                "summary": {n: counts[n].metrics() for n in names},
                "note": "fewer than two variants have requests in this window"}
    control = names[0]
    base = counts[control]
    base_cost, base_latency = samples[control]
    comparisons = []
    for name in names[1:]:
        other = counts[name]
        cost, latency = samples[name]
        metrics = {rate: two_proportions(*trials(base), *trials(other), counted=counted)
                   for rate, (trials, counted) in RATES.items()}
        metrics["cost_per_request"] = bootstrap_means(
            base_cost, cost, resolution=COST_RESOLUTION_USD, unit=" USD")
        metrics["latency"] = bootstrap_means(
            base_latency, latency, resolution=LATENCY_RESOLUTION_S, unit=" s",
            counted="answered requests")
        for measure in ("cost_per_request", "latency"):
            needed = metrics[measure].get("needed_per_variant")
            metrics[measure]["more_needed"] = None if needed is None else max(
                0, needed - min(base.requests, other.requests))
        comparisons.append({"control": control, "variant": name, "metrics": metrics})
    return {
        "variants": list(names),
        "summary": {n: counts[n].metrics() for n in names},
        "comparisons": comparisons,
    }
