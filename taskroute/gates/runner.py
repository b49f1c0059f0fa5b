"""Running a chain step's gates over one answer."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from taskroute.gates.base import Gate
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse
from taskroute.tracing.base import AttemptSpan
from taskroute.tracing.judging import judging


async def run_gates(
    gates: Sequence[Gate], answer: ChatResponse, request: ChatRequest, *,
    sync_only: bool = False, judged: AttemptSpan | None = None,
) -> tuple[GateVerdict, ...]:
    """Every plain gate's verdict, in order; the coroutine gates (a judge calls a model and
    costs money) run only when all plain gates passed, and never with `sync_only`. A gate that
    raises is a failed verdict that names the error. `judged`: the span of the call whose
    answer this is, when it is traced; a coroutine gate's model calls are spans under it."""
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
        verdicts.append(await _one(gate, answer, request) if judged is None
                        else await _traced(gate, answer, request, judged))
    return tuple(verdicts)


async def _traced(gate: Gate, answer: ChatResponse, request: ChatRequest, call: AttemptSpan
                  ) -> GateVerdict:
    """A coroutine gate judging a traced call's answer: the spans of the model calls it makes
    (`taskroute.tracing.judging`) end with its verdict."""
    with judging(_name(gate), call) as judge:
        judge.verdict = verdict = await _one(gate, answer, request)
    return verdict


def _name(gate: Gate) -> str:
    return getattr(gate, "name", type(gate).__name__)


async def _one(gate: Gate, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
    name = _name(gate)
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

