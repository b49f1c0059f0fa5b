"""The shadow report: what the shadow policy would have done against what was served.

For each shadow policy in the window, by the served request's task class:
- **agreement**: the share of requests where the shadow chose the same model, the same tier and
  the same task class as the served decision;
- **cost**: what the shadow's first pick would have cost, priced at the served request's tokens
  (its prompt: the largest input any attempt sent; its answer: the answering attempt's output),
  beside what serving actually cost (every attempt, escalations included). The shadow's own
  escalations are unknowable, so its figure is a first-pass price;
- **quality**, where outcomes exist for the model the shadow would have picked: feedback on
  answers that model gave (a good answer: not corrected and a score of at least 0.5, thumbs up
  counting 1), and gate verdicts on attempts that model made (passed or rejected), each a share
  with a 95% **Wilson score interval** — beside the same for what was served (feedback on every
  served answer, the served first pick's gate verdicts).

Pure arithmetic over grouped sums: a `LogReader` (`taskroute.store`) sums the window's shadow
decisions joined to their requests into `ShadowRow`s and calls `report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from taskroute.policy.model import Policy, Price

Z95 = 1.959964
INTERVAL = "Wilson score, 95%"


@dataclass(slots=True)
class ShadowRow:
    """The window's shadow decisions summed per (shadow policy, served and shadow task, tier
    and model, the model that answered), in this column order."""

    policy: str
    task: str
    shadow_task: str
    tier: str
    shadow_tier: str
    model: str
    shadow_model: str
    answered: str              # the policy's model that answered ('' when none did)
    requests: int
    completed: int
    input_tokens: float        # the prompt, per request, summed
    output_tokens: float       # the answer, per request, summed
    cost_usd: float            # what serving cost
    feedback: int
    feedback_good: int
    shadow_gated: int          # requests where the shadow's model made an attempt with a verdict
    shadow_gate_passed: int
    served_gated: int          # the same for the served first pick
    served_gate_passed: int

    @classmethod
    def of(cls, row: Iterable[Any]) -> ShadowRow:
        values = [_CASTS[str(f.type)](v) for v, f in zip(row, fields(cls), strict=True)]
        return cls(*values)


_CASTS: dict[str, Callable[[Any], Any]] = {
    "str": str, "float": lambda v: float(v or 0), "int": lambda v: int(v or 0)}


def wilson(successes: int, trials: int, z: float = Z95) -> dict[str, Any]:
    """The share and its Wilson score interval (sound for small counts and shares near 0 or
    1, where the normal approximation is not); None figures without trials."""
    if trials <= 0:
        return {"n": 0, "good": 0, "rate": None, "ci95": None}
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return {"n": trials, "good": successes, "rate": round(p, 6),
            "ci95": [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]}


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    same_model: int = 0
    same_tier: int = 0
    same_task: int = 0
    cost_usd: float = 0.0
    shadow_cost_usd: float = 0.0
    priced: int = 0
    feedback: int = 0
    feedback_good: int = 0
    shadow_feedback: int = 0
    shadow_feedback_good: int = 0
    shadow_gated: int = 0
    shadow_gate_passed: int = 0
    served_gated: int = 0
    served_gate_passed: int = 0

    def add(self, row: ShadowRow, price: Price | None) -> None:
        n = row.requests
        self.requests += n
        self.same_model += n if row.model == row.shadow_model else 0
        self.same_tier += n if row.tier == row.shadow_tier else 0
        self.same_task += n if row.task == row.shadow_task else 0
        self.cost_usd += row.cost_usd
        if price is not None:
            self.priced += n
            self.shadow_cost_usd += (row.input_tokens * price.input
                                     + row.output_tokens * price.output) / 1e6
        self.feedback += row.feedback
        self.feedback_good += row.feedback_good
        if row.answered and row.answered == row.shadow_model:
            self.shadow_feedback += row.feedback
            self.shadow_feedback_good += row.feedback_good
        self.shadow_gated += row.shadow_gated
        self.shadow_gate_passed += row.shadow_gate_passed
        self.served_gated += row.served_gated
        self.served_gate_passed += row.served_gate_passed

    def to_dict(self) -> dict[str, Any]:
        n = self.requests
        return {
            "requests": n,
            "agreement": {"model": _share(self.same_model, n), "tier": _share(self.same_tier, n),
                          "task": _share(self.same_task, n)},
            "served_cost_usd": round(self.cost_usd, 8),
            "shadow_cost_usd": round(self.shadow_cost_usd, 8),
            "priced_requests": self.priced,
            "quality": {
                "shadow": {"feedback": wilson(self.shadow_feedback_good, self.shadow_feedback),
                           "gates": wilson(self.shadow_gate_passed, self.shadow_gated)},
                "served": {"feedback": wilson(self.feedback_good, self.feedback),
                           "gates": wilson(self.served_gate_passed, self.served_gated)},
            },
        }


def _share(k: int, n: int) -> float | None:
    return round(k / n, 6) if n else None


def report(rows: Iterable[ShadowRow], prices: Mapping[str, Price], *,
           since_s: float | None) -> dict[str, Any]:
    """One entry per shadow policy (by name), with its totals and one row per served task
    class; models `prices` does not know are left out of the shadow's cost (and listed)."""
    totals: dict[str, _Sums] = {}
    classes: dict[str, dict[str, _Sums]] = {}
    picks: dict[str, dict[str, dict[str, int]]] = {}
    unpriced: dict[str, set[str]] = {}
    for row in rows:
        price = prices.get(row.shadow_model)
        if price is None:
            unpriced.setdefault(row.policy, set()).add(row.shadow_model)
        totals.setdefault(row.policy, _Sums()).add(row, price)
        classes.setdefault(row.policy, {}).setdefault(row.task, _Sums()).add(row, price)
        by_model = picks.setdefault(row.policy, {}).setdefault(row.task, {})
        by_model[row.shadow_model] = by_model.get(row.shadow_model, 0) + row.requests
    policies = []
    for name in sorted(totals):
        entry = {"policy": name, **totals[name].to_dict(),
                 "unpriced_models": sorted(unpriced.get(name, ())), "classes": []}
        for task in sorted(classes[name]):
            entry["classes"].append({
                "task": task, **classes[name][task].to_dict(),
                "shadow_models": dict(sorted(picks[name][task].items(),
                                             key=lambda kv: (-kv[1], kv[0])))})
        policies.append(entry)
    return {"window_s": since_s, "interval": INTERVAL, "policies": policies}


def prices(policy: Policy) -> dict[str, Price]:
    """Model name → price for pricing the shadow's picks: its own models, then the served
    policy's for any it does not define."""
    found = {name: spec.price for name, spec in policy.models.items()}
    if policy.shadow is not None:
        found.update({name: spec.price for name, spec in policy.shadow.models.items()})
    return found
