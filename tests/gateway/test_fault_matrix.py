"""The fault matrix: every fault kind × (the first pick fails | every deployment fails) ×
(streamed | not), through the real gateway and the SIMULATED upstream, asserting what the
client receives and what the log records. docs/faults.md is the same cases as a table
(`scripts/fault_table.py` writes it).

A live stream's opening is held for the refusal gate (`calling/hold.py`: 40 characters, or
300 ms; a short answer whole, judged by every gate), so a refusal, a truncation, or a stream
that breaks inside it, fails over unseen as a plain answer does. A stream that breaks after its
opening went out is rescued (`calling/rescue.py`): the next model in the chain continues the
answer in the same stream, which ends with `[DONE]`; when that one breaks too, the client gets
a 200 without `[DONE]` but with an error event, and the log records an error. A live answer
that failed its gates after it went out (a long answer truncated at its end) is logged
`rejected`, never `ok` (tests/calling/test_rescue.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .faults import DEADLINE_S, DEPLOYMENTS, FAULTS, SCOPES, Fault, Outcome, Scope, run_case

TIMEOUTS = {"connect timeout", "slow first token"}          # every deployment: the deadline
LIVE_BREAKS = {"total timeout"}  # broken once its opening went out (the stall outlasts the hold)
GATES = {"answer fails its gates (refusal)", "truncated (finish_reason length)"}
NOT_RETRIED = {"upstream 401", "429, long Retry-After (30 s)"}
RETRY_AFTER = {"429, short Retry-After (10 ms)": "1", "429, long Retry-After (30 s)": "30"}
FIRST, BACKUP, ESCALATION = DEPLOYMENTS[0], DEPLOYMENTS[1], DEPLOYMENTS[2]


@dataclass(frozen=True, slots=True)
class Expected:
    status: int
    log_status: str
    answered_by: str | None
    attempts: tuple[str, ...] | None      # None: cut by the deadline, so how many varies
    error_type: str | None = None
    done: bool | None = None
    retry_after: str | None = None


def expected(fault: Fault, scope: Scope, streamed: bool) -> Expected:
    name = fault.name
    done = True if streamed else None
    if name == "malformed SSE" and not streamed:  # a plain answer has no SSE to break
        return Expected(200, "ok", FIRST, (f"{FIRST} first ok",))
    if streamed and (name in LIVE_BREAKS):  # rescued by the next model, in the same stream
        if scope == "first pick":
            return Expected(200, "ok", FIRST, (f"{FIRST} first error", f"{ESCALATION} rescue ok"),
                            done=True)
        kind = "timeout_error" if name == "total timeout" else "upstream_error"
        return Expected(200, "error", FIRST,
                        (f"{FIRST} first error", f"{ESCALATION} rescue error"), kind, done=False)
    if name in GATES:  # streamed too: judged while held (a refusal on its opening, a short
        # answer, as all of these are, whole), before any of it goes out
        if scope == "first pick":
            return Expected(200, "ok", ESCALATION,
                            (f"{FIRST} first rejected", f"{ESCALATION} escalation ok"), done=done)
        return Expected(502, "error", None,
                        (f"{FIRST} first rejected", f"{ESCALATION} escalation rejected"),
                        "upstream_error")
    tries = (f"{FIRST} first error",) + (() if name in NOT_RETRIED else (f"{FIRST} retry error",))
    if scope == "first pick":
        return Expected(200, "ok", BACKUP, (*tries, f"{BACKUP} failover ok"), done=done)
    if name in TIMEOUTS or (name == "total timeout" and not streamed):
        return Expected(504, "error", None, None, "timeout_error")
    every = tuple(
        f"{d} {role} error" for i, d in enumerate(DEPLOYMENTS)
        for role in (("first" if i == 0 else "escalation" if i == 2 else "failover"), "retry")
        if role != "retry" or name not in NOT_RETRIED)
    if name in RETRY_AFTER:
        return Expected(429, "error", None, every, "rate_limit_error",
                        retry_after=RETRY_AFTER[name])
    return Expected(502, "error", None, every, "upstream_error")


CASES = [pytest.param(fault, scope, streamed,
                      id=f"{fault.name}|{scope}|{'streamed' if streamed else 'plain'}")
         for fault in FAULTS for scope in SCOPES for streamed in (False, True)]


@pytest.mark.parametrize(("fault", "scope", "streamed"), CASES)
async def test_fault(fault: Fault, scope: Scope, streamed: bool) -> None:
    got: Outcome = await run_case(fault, scope, streamed)
    want = expected(fault, scope, streamed)
    assert got.status == want.status, got
    assert got.log_http == got.status, got           # the log says what the client got
    assert got.log_status == want.log_status, got
    assert got.answered_by == want.answered_by, got
    assert got.error_type == want.error_type, got
    assert got.done == want.done, got
    assert got.retry_after == want.retry_after, got
    assert got.content == (want.status == 200), got
    if want.attempts is not None:
        assert got.attempts == want.attempts, got
    else:  # the deadline ended it: every attempt failed, and the client waited no longer
        assert got.attempts and all(a.endswith(" error") for a in got.attempts), got
        assert DEADLINE_S - 0.1 < got.seconds < DEADLINE_S + 0.6, got
