"""Running a chain step's gates over one answer."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from taskroute.gates.base import Gate
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse


async def run_gates(
    gates: Sequence[Gate], answer: ChatResponse, request: ChatRequest, *, sync_only: bool = False
) -> tuple[GateVerdict, ...]:
    """Every plain gate's verdict, in order; the coroutine gates (a judge calls a model and
    costs money) run only when all plain gates passed, and never with `sync_only`. A gate that
    raises is a failed verdict that names the error."""
    verdicts: list[GateVerdict] = []
    deferred: list[Gate] = []
    for gate in gates:
        if inspect.iscoroutinefunction(gate.check):
            deferred.append(gate)
            continue
        verdicts.append(await _one(gate, answer, request))
    if sync_only or not all(v.passed for v in verdicts):
        return tuple(verdicts)
    for gate in deferred:
        verdicts.append(await _one(gate, answer, request))
    return tuple(verdicts)


async def _one(gate: Gate, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
    name = getattr(gate, "name", type(gate).__name__)
    try:
        result = gate.check(answer, request)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a faulty gate rejects, visibly, instead of failing the request
        return GateVerdict(name, False, f"the gate raised {type(exc).__name__}: {exc}")
    assert isinstance(result, GateVerdict), f"gate {name} returned {result!r}"
    return result


def passed(verdicts: Sequence[GateVerdict]) -> bool:
    return all(v.passed for v in verdicts)

