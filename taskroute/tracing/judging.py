"""The spans of a judge's calls, under the traced call whose answer it grades.

A gate is asked `check(answer, request)` and nothing else (the seam plugins implement), so the
call whose answer it is judging travels in a context variable, as the trace headers of the call
in flight do (`propagation.OUTGOING`): the gate runner sets it while a coroutine gate of a
traced call runs (`judging`), the engine's model caller for gates reads it and opens the
judge's span under that call (`Judging.open`), and the runner ends every such span with the
gate's verdict once it is known. Untraced, nothing is set and nothing is opened."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskroute.decision import Decision
    from taskroute.records import GateVerdict, RouteRecord
    from taskroute.request import ChatRequest
    from taskroute.tracing.base import AttemptSpan, JudgeSpan

_Called = tuple["JudgeSpan", "RouteRecord", "str | None", "BaseException | None"]


class Judging:
    """One gate grading one traced call's answer: the spans of the model calls it makes."""

    __slots__ = ("_call", "_called", "_gate", "verdict")

    def __init__(self, gate: str, call: AttemptSpan) -> None:
        self._gate, self._call = gate, call
        self._called: list[_Called] = []
        self.verdict: GateVerdict | None = None

    def open(self, request: ChatRequest, decision: Decision) -> JudgeSpan:
        """The span of the judge's call starting now (its calls are attempts under it)."""
        return self._call.judge(request, decision, self._gate)

    def called(self, span: JudgeSpan, record: RouteRecord, *, answer: str | None,
               error: BaseException | None) -> None:
        """The judge's call ended as `record`; its span ends with the verdict."""
        self._called.append((span, record, answer, error))

    def end(self) -> None:
        for span, record, answer, error in self._called:
            span.judged(self.verdict)
            span.end(record, answer=answer, error=error)
        self._called.clear()


JUDGING: ContextVar[Judging | None] = ContextVar("taskroute_judging", default=None)


@contextlib.contextmanager
def judging(gate: str, call: AttemptSpan) -> Iterator[Judging]:
    """While the block runs, `gate`'s model calls are judge spans under `call`; they end
    when it does, with the `verdict` set on what is yielded (None if none was)."""
    slot = Judging(gate, call)
    token = JUDGING.set(slot)
    try:
        yield slot
    finally:
        JUDGING.reset(token)
        slot.end()
