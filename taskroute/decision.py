"""A routing decision and its reasons: what `Router.decide` returns and every layer reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from taskroute.signals import Signals

TaskSource = Literal["caller", "rule", "classifier", "default"]


@dataclass(frozen=True, slots=True)
class Decision:
    task: str
    task_source: TaskSource
    task_confidence: float | None   # the classifier's probability, when it chose
    signals: Signals
    tier: str
    model: str                      # the first pick, provider/model
    chain: tuple[str, ...]          # the first pick, then the models to escalate to
    estimated_cost_usd: float
    reasons: tuple[str, ...]
    policy: str
    routed: bool = True             # False when the caller named a concrete model
    label: str | None = None        # what a user may be shown of the route ("Quick answer")

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.chain[1:]

    def explain(self) -> str:
        """The decision as a few sentences."""
        lines = [
            f"Routed as {self.task} to the {self.tier} tier: {self.model}."
            if self.routed else f"Sent to {self.model}, as the caller asked ({self.task}).",
        ]
        lines.extend(f"- {reason}" for reason in self.reasons)
        if self.fallbacks:
            chain = " → ".join(self.fallbacks)
            lines.append(f"If its answer is rejected or the call fails: {chain}.")
        if self.label is not None:
            lines.append(f"Users see: {self.label}.")
        lines.append(f"Estimated cost: ${self.estimated_cost_usd:.6f}.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_source": self.task_source,
            "task_confidence": self.task_confidence,
            "tier": self.tier,
            "model": self.model,
            "chain": list(self.chain),
            "estimated_cost_usd": self.estimated_cost_usd,
            "reasons": list(self.reasons),
            "signals": self.signals.to_dict(),
            "policy": self.policy,
            "routed": self.routed,
            "label": self.label,
        }
