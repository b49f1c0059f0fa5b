"""Holding a live stream's opening back for the gates that judge an opening.

A refusal comes first ("I can't help with that."), so a live answer that would fail the
refusal gate shows it in its first few dozen characters. Those are held — `chars` characters,
or what has come after `at_most_s` when the model is slow, whichever is first — and judged by
the task's opening gates before any of them goes out: a refusal there escalates to the next
model unseen, as a buffered answer would. Only gates that say they judge an opening
(`judges_opening = True`) run on it; the rest judge the whole answer when it ends — unless the
whole answer came inside the hold (a short one, or one cut short), when every plain gate judges
it there, so a truncated short answer escalates unseen too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from taskroute.calling.context import CallContext
from taskroute.calling.once import Opened, Wiring, close_quietly, open_stream
from taskroute.gates.base import Gate
from taskroute.gates.runner import passed, run_gates
from taskroute.policy.model import RefusalHold
from taskroute.records import AttemptRole


def opening_gates(gates: Sequence[Gate]) -> tuple[Gate, ...]:
    """The gates that judge an opening (worked out once per stream: `hold_for` and
    `judged_opening` are given them)."""
    return tuple(g for g in gates if getattr(g, "judges_opening", False))


def hold_for(ctx: CallContext, opening: Sequence[Gate]) -> RefusalHold | None:
    """The hold for this request's live stream: its task's, else the policy's; none when no
    gate of the task judges an opening (`opening`, the task's `opening_gates`), or the hold is
    off (`hold for refusal: false`)."""
    if not opening:
        return None
    task = ctx.policy.tasks.get(ctx.decision.task)
    hold = task.refusal_hold if task is not None and task.refusal_hold is not None \
        else ctx.policy.calling.refusal_hold
    return hold if hold.chars > 0 else None


def holding(hold: RefusalHold, opening: Sequence[Gate] = ()) -> Callable[
        [CallContext, Wiring, str, str, AttemptRole], Awaitable[Opened]]:
    """One call (the innermost layer, as `open_stream`) that opens a stream and holds its
    opening (`calling/opening.py`): a stream that breaks while held is this deployment's
    failure, nothing having gone out, so it is retried or failed over like any other. With
    `release_early`, the opening goes out as soon as every opening gate (`opening`) is sure
    of it (`settled`)."""
    settled = settled_by(opening) if hold.release_early else None

    async def once(ctx: CallContext, wiring: Wiring, model: str, deployment: str,
                   role: AttemptRole) -> Opened:
        return await open_stream(ctx, wiring, model, deployment, role, hold=hold,
                                 settled=settled)

    return once


def settled_by(opening: Sequence[Gate]) -> Callable[[str], bool] | None:
    """True of an opening's text once every opening gate is sure of it: each gate that judges
    an opening may say so with `settled(text)`; a gate that cannot is never sure, so then the
    whole hold is kept (None)."""
    checks: list[Callable[[str], bool]] = []
    for gate in opening:
        check = getattr(gate, "settled", None)
        if not callable(check):
            return None
        checks.append(check)
    if not checks:
        return None
    return checks[0] if len(checks) == 1 else (lambda text: all(c(text) for c in checks))


def judged_opening(ctx: CallContext, gates: Sequence[Gate], opening: Sequence[Gate]
                   ) -> Callable[[Opened], Awaitable[bool]]:
    """Accept a live stream whose held opening passes the opening gates (`opening`; the whole
    answer, when it is all held: every plain gate of `gates`); one that fails is closed and
    recorded `rejected` (its tokens so far billed), and the chain goes on. The opening is
    judged off the stream's tally (`Opened.tally`), which the record goes on from."""

    async def accept(opened: Opened) -> bool:
        tally = opened.tally
        whole = tally.finish_reason is not None
        verdicts = await run_gates(gates if whole else opening,
                                   tally.response(model=opened.deployment), ctx.request,
                                   sync_only=True)
        if passed(verdicts):
            if whole:
                opened.judged = verdicts
            return True
        await close_quietly(opened.rest)
        opened.call.answered("rejected", verdicts, tally=tally)
        return False

    return accept
