"""Agent runs: model steps and parallel tool calls in turn, each step routed on its own."""

from taskroute.agent.limits import Limits
from taskroute.agent.loop import AgentResult, Steps, run_agent

__all__ = ["AgentResult", "Limits", "Steps", "run_agent"]
