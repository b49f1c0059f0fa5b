"""Writing requests with known outcomes straight into a real SQLite log (through `SqliteStore`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from taskroute.policy.loader import load_default_policy
from taskroute.records import Attempt, AttemptStatus, RouteRecord
from taskroute.request import ChatRequest
from taskroute.router import Router
from taskroute.store.base import LogEntry
from taskroute.store.sqlite import SqliteStore

_ROUTER = Router(load_default_policy(), classifier=False)
_BASE = _ROUTER.decide(ChatRequest.from_prompt("hello there"), task="chat")


class Logbook:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.store = SqliteStore(db)
        self.count = 0

    def add(
        self, *, task: str = "chat", tier: str = "fast", model: str = "openai/gpt-4.1-mini",
        attempts: list[tuple[str, AttemptStatus, float]] | None = None,
        latency: float = 0.5, first_token: float | None = None, ts: float | None = None,
        variant: str | None = None, user: str | None = None, policy: str = "default",
        tokens: tuple[int, int] = (0, 0),
    ) -> str:
        """One request; `attempts` as (model, status, cost), each with `tokens` (in, out). The
        answer comes from the last attempt with status ok (none: the request failed)."""
        self.count += 1
        request_id = f"req-test-{self.count:06d}"
        attempts = attempts if attempts is not None else [(model, "ok", 0.001)]
        ts = time.time() - 60 if ts is None else ts
        answered = next((m for m, s, _ in reversed(attempts) if s == "ok"), None)
        records = [
            Attempt(model=m, deployment=m, role="first" if i == 0 else (
                "retry" if m == attempts[i - 1][0] else "escalation"), status=s,
                started_at=ts, latency_s=latency / len(attempts), cost_usd=c,
                input_tokens=tokens[0], output_tokens=tokens[1])
            for i, (m, s, c) in enumerate(attempts)
        ]
        decision = replace(_BASE, task=task, tier=tier, model=model, chain=(model,),
                           policy=policy)
        record = RouteRecord(
            request_id=request_id, decision=decision, attempts=records, answered_by=answered,
            status="ok" if answered else "error", latency_s=latency, first_token_s=first_token,
            started_at=ts,
        )
        self.store.add(LogEntry(record=record, api="openai", variant=variant, user=user))
        return request_id

    async def reader(self) -> SqliteStore:
        """The log's store as its reader, once everything added is written."""
        await self.store.flush()
        return self.store

    def close(self) -> None:
        self.store.close()
