"""A live stream's gates run after the answer has gone out, and only the plain ones: an answer
whose task has a gate that could not run (a judge) is recorded as unchecked, never as ok."""

from __future__ import annotations

from pathlib import Path

from taskroute.gates.base import Gate
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

from .support import MemoryStore, RouterFactory, ask


class SlowJudge:
    name = "slow_judge"

    async def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        return GateVerdict(self.name, True)


class Plain:
    name = "plain"

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        return GateVerdict(self.name, True)


async def _streamed(make_router: RouterFactory, gates: tuple[Gate, ...]) -> MemoryStore:
    store = MemoryStore()
    router = make_router(store=store)
    router.engine.gates_for = lambda decision: gates  # type: ignore[method-assign]
    stream = router.stream(ask(), task="chat")
    assert "".join([c.delta_text async for c in stream])
    return store


async def test_a_live_stream_with_a_gate_that_could_not_run_is_logged_unchecked(
    make_router: RouterFactory,
) -> None:
    store = await _streamed(make_router, (Plain(), SlowJudge()))
    (entry,) = store.entries
    assert entry.record.status == "unchecked" and entry.http_status == 200
    (attempt,) = entry.record.attempts
    assert attempt.status == "unchecked" and "slow_judge" in (attempt.error or "")
    assert [v.gate for v in attempt.verdicts] == ["plain"]


async def test_a_live_stream_whose_gates_all_ran_is_ok(make_router: RouterFactory) -> None:
    store = await _streamed(make_router, (Plain(),))
    assert store.entries[0].record.status == "ok"
    assert store.entries[0].record.attempts[0].status == "ok"


async def test_an_unchecked_answer_counts_as_answered_in_the_stats(
    make_router: RouterFactory, tmp_path: Path,
) -> None:
    from taskroute.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "log.db")
    router = make_router(store=store)
    router.engine.gates_for = lambda decision: (SlowJudge(),)  # type: ignore[method-assign]
    assert [c async for c in router.stream(ask(), task="chat")]
    await store.flush()
    total = (await store.route_stats(since_s=None))["total"]
    assert total["requests"] == 1 and total["completed"] == 1
    await store.aclose()
