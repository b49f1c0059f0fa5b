"""The `Gate` Protocol: one method that judges whether an answer is good enough.

A gate that fails sends the request to the next model in the chain. Most gates are plain
functions of the answer and the request; a gate that must call a model (the judge) makes
`check` a coroutine, and the call path awaits it. Nothing else distinguishes the two.

A new gate is one module with a `GateFactory` named in `taskroute.plugins.GATES` (a plugin's
entry point in the `taskroute.gates` group); `gates/registry.py` builds what a policy names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from taskroute.policy.model import Policy
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

# What the judge gate uses to call a model: (policy model id, request) -> answer and its cost.
ModelCaller = Callable[[str, ChatRequest], Awaitable[tuple[ChatResponse, float]]]


class Gate(Protocol):
    name: str

    def check(
        self, answer: ChatResponse, request: ChatRequest
    ) -> GateVerdict | Awaitable[GateVerdict]:
        """Pass or reject `answer` to `request`, saying why."""
        ...


@dataclass(frozen=True, slots=True)
class GateEnv:
    """What a gate factory may use besides its own settings."""

    policy: Policy
    call_model: ModelCaller | None = None  # None while the policy is only being checked


# A factory turns a gate's settings from the policy (`{length: {min: 1}}` → {"min": 1}) into a
# gate. It raises ValueError with a plain sentence when the settings are wrong.
GateFactory = Callable[[Mapping[str, Any], GateEnv], Gate]


def verdict(gate: str, passed: bool, reason: str = "", **kw: Any) -> GateVerdict:
    return GateVerdict(gate=gate, passed=passed, reason=reason, **kw)


def no_settings(name: str, params: Mapping[str, Any]) -> None:
    """For gates that take no settings: reject any given, so typos do not pass silently."""
    if params:
        raise ValueError(f"the {name} gate takes no settings, got {', '.join(params)}")


def number_setting(
    name: str, params: Mapping[str, Any], key: str, *, default: float | None = None,
    low: float | None = None, high: float | None = None,
) -> float | None:
    value = params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"the {name} gate's '{key.replace('_', ' ')}' must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(
            f"the {name} gate's '{key.replace('_', ' ')}' must be between {low} and {high}"
        )
    return float(value)


def allowed_settings(name: str, params: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    unknown = [k for k in params if k not in keys]
    if unknown:
        raise ValueError(
            f"the {name} gate does not know {', '.join(repr(k.replace('_', ' ')) for k in unknown)}"
            f"; it takes {', '.join(k.replace('_', ' ') for k in keys)}"
        )
