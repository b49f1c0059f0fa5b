"""The cascade, replayed: cheapest model first, its recorded answer judged by the quality gates,
escalate on rejection. Cost counts every call made, rejected ones included.

The judge is built from the same gates the live call path uses (`non_empty`, `refusal`,
`length`, `regex`, ...), run over the recorded response as if it had just arrived. Gates that
must call a model (`judge`) cannot run offline and are refused by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from taskroute.evaluate.datasets import Dataset
from taskroute.exceptions import CallerError, DataError, UnknownModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# (prompt, recorded response) -> accept?
Judge = Callable[[str, str], bool]
DEFAULT_GATES: tuple[str, ...] = ("non_empty", "refusal")


def gate_judge(names: Sequence[str] = DEFAULT_GATES) -> Judge:
    """A judge that accepts a response when every named built-in gate passes it."""
    from taskroute.gates.base import GateEnv
    from taskroute.gates.registry import GateRegistry
    from taskroute.policy.loader import load_default_policy
    from taskroute.policy.model import GateSpec
    from taskroute.request import ChatRequest
    from taskroute.response import ChatResponse, Choice, ResponseMessage

    registry = GateRegistry()
    env = GateEnv(policy=load_default_policy())
    gates = []
    for name in names:
        if name not in registry.names:
            raise CallerError(f"unknown gate {name!r}; known gates: {', '.join(registry.names)}")
        gate = registry.build(GateSpec(name, {}), env, where="the cascade")
        if inspect.iscoroutinefunction(gate.check):
            raise CallerError(f"the {name} gate calls a model; it cannot judge recorded answers")
        gates.append(gate)

    def judge(prompt: str, response: str) -> bool:
        request = ChatRequest.from_prompt(prompt)
        answer = ChatResponse(model="recorded",
                              choices=[Choice(message=ResponseMessage(content=response))])
        for gate in gates:
            verdict = gate.check(answer, request)
            assert not inspect.isawaitable(verdict)  # refused above
            if not verdict.passed:
                return False
        return True

    return judge


@dataclass
class CascadeStrategy:
    """`cascade` (every model, cheapest first) or `cascade:A,B,C` (that chain)."""

    chain: tuple[str, ...] = ()
    gates: tuple[str, ...] = DEFAULT_GATES
    name: str = "cascade"

    def check(self, data: Dataset) -> None:
        """Refuse, before any replay, a chain naming unknown models, unknown gates, or data
        without recorded responses."""
        for name in self.chain:
            if name not in data.models:
                raise UnknownModel(name, data.models)
        gate_judge(self.gates)
        if not any(o.response is not None for r in data.records for o in r.outcomes.values()):
            raise DataError("the cascade needs recorded responses; this data has none",
                            file=data.source)

    def run(self, test: Dataset, costs: FloatArray) -> CascadeResult:
        return run_cascade(test, costs, gate_judge(self.gates), self.chain or None)


@dataclass
class CascadeResult:
    chosen: IntArray       # the model whose answer was kept
    cost: FloatArray       # every call counted
    calls: IntArray


def run_cascade(test: Dataset, costs: FloatArray, judge: Judge,
                chain: Sequence[str] | None = None) -> CascadeResult:
    """Walk each prompt up `chain` (default: every model, cheapest first) until an answer
    passes the judge; the last model's answer is kept whatever it is."""
    if chain:
        for name in chain:
            if name not in test.models:
                raise UnknownModel(name, test.models)
        order = [test.models.index(m) for m in chain]
    else:
        order = [int(j) for j in np.argsort(costs, kind="stable")]
    n = len(test)
    chosen = np.zeros(n, dtype=np.int64)
    spent, calls = np.zeros(n), np.zeros(n, dtype=np.int64)
    for i, rec in enumerate(test.records):
        for step, j in enumerate(order):
            outcome = rec.outcomes.get(test.models[j])
            if outcome is None:
                continue
            if outcome.response is None:
                raise DataError("the cascade needs recorded responses", file=test.source,
                                row=i + 1, field=f"outcomes.{test.models[j]}.response")
            spent[i] += costs[j] if outcome.cost is None else outcome.cost
            calls[i] += 1
            chosen[i] = j
            if step == len(order) - 1 or judge(rec.text, outcome.response):
                break
    return CascadeResult(chosen, spent, calls)


def cascade_figures(result: CascadeResult, scores: FloatArray) -> dict[str, float]:
    """Quality, cost per request, cost per completed task, escalation rate, calls per request."""
    quality = scores[np.arange(len(result.chosen)), result.chosen]
    completed = float((quality >= 0.5).sum())
    total = float(result.cost.sum())
    return {"quality": float(quality.mean()), "cost": float(result.cost.mean()),
            "cost-per-completed": total / completed if completed else float("inf"),
            "escalation-rate": float((result.calls > 1).mean()),
            "calls-per-request": float(result.calls.mean())}

