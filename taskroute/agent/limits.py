"""Where an agent run stops: its steps, its cost, its time. The policy's `agent:` section gives
them; a caller may pass its own to one run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from taskroute.exceptions import AgentLimitReached, InvalidRequest
from taskroute.policy.model import AgentSpec


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = 8
    max_cost_usd: float | None = None
    deadline_s: float | None = None
    tool_timeout_s: float = 30.0
    parallel_tools: int = 8
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, spec: AgentSpec, *, max_steps: int | None = None,
           max_cost_usd: float | None = None, deadline_s: float | None = None) -> Limits:
        """The policy's limits, each replaced by the caller's when given; the clock starts."""
        if max_steps is not None and max_steps < 1:
            raise InvalidRequest("max_steps must be at least 1", param="max_steps")
        for name, value in (("max_cost_usd", max_cost_usd), ("deadline_s", deadline_s)):
            if value is not None and value <= 0:
                raise InvalidRequest(f"{name} must be above zero", param=name)
        return cls(max_steps=max_steps or spec.max_steps,
                   max_cost_usd=max_cost_usd if max_cost_usd is not None else spec.max_cost_usd,
                   deadline_s=deadline_s if deadline_s is not None else spec.deadline_s,
                   tool_timeout_s=spec.tool_timeout_s, parallel_tools=spec.parallel_tools)

    def left_s(self) -> float | None:
        """Seconds the run has left (None: no deadline)."""
        if self.deadline_s is None:
            return None
        return self.deadline_s - (time.monotonic() - self.started)

    def out_of_time(self) -> bool:
        left = self.left_s()
        return left is not None and left <= 0

    def tool_timeout(self) -> float:
        left = self.left_s()
        return self.tool_timeout_s if left is None else max(min(self.tool_timeout_s, left), 0.0)

    def check(self, step: int, spent: float, estimate: float) -> None:
        """Before step `step` (1, 2, ...): raise `AgentLimitReached` if it may not start."""
        if step > self.max_steps:
            raise AgentLimitReached("steps", f"the agent run reached its limit of "
                                             f"{self.max_steps} model steps before an answer")
        if self.out_of_time():
            raise self.deadline_reached()
        limit = self.max_cost_usd
        if limit is not None and spent + estimate > limit:
            raise AgentLimitReached(
                "cost", f"the agent run stopped before step {step}: it has cost ${spent:.6f} "
                        f"and the step is estimated at ${estimate:.6f}, over its "
                        f"${limit:.6f} limit")

    def deadline_reached(self) -> AgentLimitReached:
        return AgentLimitReached("deadline", f"the agent run reached its deadline of "
                                             f"{self.deadline_s:g}s before an answer")
