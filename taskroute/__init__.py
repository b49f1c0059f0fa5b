"""taskroute: send each LLM request to the simplest model that reliably clears the bar.

    from taskroute import Router
    router = Router.default()
    decision = router.decide({"messages": [{"role": "user", "content": "Summarize: ..."}]})
    print(decision.explain())

Importing taskroute does no I/O and needs no API key; heavy parts load when first used.
"""

from taskroute.decision import Decision
from taskroute.exceptions import (
    AgentLimitReached,
    CallerError,
    ChainExhausted,
    ConfigError,
    DataError,
    InvalidRequest,
    PolicyError,
    RateLimited,
    Secret,
    TaskrouteError,
    UnknownModel,
    UnknownTask,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.experiment import Experiment, compose
from taskroute.policy import Policy, load_policy
from taskroute.quality.budgets import SpendTracker
from taskroute.records import RequestContext
from taskroute.request import ChatRequest, Message
from taskroute.response import ChatResponse
from taskroute.router import Router
from taskroute.signals import Signals
from taskroute.tools import Tools, run_tool_calls

__version__ = "0.1.0"

__all__ = [
    "AgentLimitReached",
    "CallerError",
    "ChainExhausted",
    "ChatRequest",
    "ChatResponse",
    "ConfigError",
    "DataError",
    "Decision",
    "Experiment",
    "InvalidRequest",
    "Message",
    "Policy",
    "PolicyError",
    "RateLimited",
    "RequestContext",
    "Router",
    "Secret",
    "Signals",
    "SpendTracker",
    "TaskrouteError",
    "Tools",
    "UnknownModel",
    "UnknownTask",
    "UpstreamError",
    "UpstreamStatus",
    "UpstreamTimeout",
    "__version__",
    "compose",
    "load_policy",
    "run_tool_calls",
]
