"""An agent run is logged as one request: its steps' routes in `requests.steps`, each attempt's
step in `attempts.step`, in SQLite and PostgreSQL alike; the stats count the run once, its cost
every step's; rows journaled or spooled before the step columns still land."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from taskroute.records import Attempt, RouteRecord, Step, ToolRun
from taskroute.store.base import LogEntry
from taskroute.store.postgres_spool import Spool
from taskroute.store.sqlite import SqliteStore, attempt_rows, request_row
from tests.servers import PostgresCluster
from tests.store.conftest import StoreFactory
from tests.store.test_postgres import wait_for
from tests.store.test_sqlite import a_decision, make_entry, rows


def run_entry(request_id: str = "run-1") -> LogEntry:
    decision = a_decision()
    cheap = replace(decision, task="tool_use", tier="fast", model="openai/gpt-4.1-mini")
    now = time.time()

    def attempt(model: str, step: int, cost: float) -> Attempt:
        return Attempt(model=model, deployment=model, role="first", status="ok", started_at=now,
                       latency_s=0.1, input_tokens=20, output_tokens=5, cost_usd=cost, step=step)

    attempts = [attempt("openai/gpt-4.1-mini", 1, 0.001),
                attempt("anthropic/claude-opus-4-5", 2, 0.01)]
    steps = [
        Step(1, "plan", cheap, "tool calls", "openai/gpt-4.1-mini", 1, 0.001, 0.1,
             tools=(ToolRun("weather", "call_1", "ok", 0.3), ToolRun("news", "call_2",
                                                                    "timeout", 0.5)),
             tools_s=0.5),
        Step(2, "finalise", decision, "answer", "anthropic/claude-opus-4-5", 1, 0.01, 0.1),
    ]
    record = RouteRecord(request_id=request_id, decision=decision, attempts=attempts,
                         answered_by="anthropic/claude-opus-4-5", latency_s=0.7,
                         started_at=now, steps=steps)
    return LogEntry(record=record, api="library")


def check_steps(steps_json: Any, attempt_steps: list[Any]) -> None:
    steps = json.loads(steps_json)
    assert [(s["step"], s["kind"], s["tier"], s["outcome"]) for s in steps] == [
        (1, "plan", "fast", "tool calls"), (2, "finalise", a_decision().tier, "answer")]
    assert [t["status"] for t in steps[0]["tools"]] == ["ok", "timeout"]
    assert [int(s) for s in attempt_steps] == [1, 2]


async def test_sqlite_logs_a_run_as_one_request_with_its_steps(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.add(run_entry())
    store.add(make_entry("plain"))
    await store.flush()
    [(steps_json,)] = rows(tmp_path / "log.db", "SELECT steps FROM requests "
                                                "WHERE request_id = 'run-1'")
    got = rows(tmp_path / "log.db", "SELECT step FROM attempts WHERE request_id = 'run-1' "
                                    "ORDER BY seq")
    check_steps(steps_json, [s for (s,) in got])
    assert rows(tmp_path / "log.db", "SELECT steps FROM requests WHERE request_id = 'plain'"
                ) == [(None,)]
    stats = await store.route_stats(since_s=None)
    assert stats["total"]["requests"] == 2              # the run once, not once per step
    assert abs(stats["total"]["cost_usd"] - (0.011 + 0.001)) < 1e-9
    await store.aclose()


async def test_postgres_logs_a_run_as_one_request_with_its_steps(
    postgres_cluster: PostgresCluster, pg_url: str, open_pg: StoreFactory, tmp_path: Path
) -> None:
    old = make_entry("spooled-old")   # spooled before the step columns: 36 and 17 of them
    spooled = Spool(tmp_path / "spool")
    spooled.append([("e", list(request_row(old))[:36], [list(a)[:17] for a in attempt_rows(old)])])
    spooled.close()
    store = open_pg()
    store.add(run_entry())
    await store.flush()
    database = pg_url.rsplit("/", 1)[1]
    await wait_for(lambda: not store.spool.has_any())   # the spooled row, replayed
    steps_json = postgres_cluster.psql(database, "SELECT steps FROM requests "
                                                 "WHERE request_id = 'run-1'")
    attempt_steps = postgres_cluster.psql(database, "SELECT step FROM attempts "
                                                    "WHERE request_id = 'run-1' ORDER BY seq")
    check_steps(steps_json, attempt_steps.split())
    assert postgres_cluster.psql(database, "SELECT count(*) FROM attempts WHERE request_id = "
                                           "'spooled-old' AND step IS NULL").strip() == "1"
    stats = await store.route_stats(since_s=None)
    assert stats["total"]["requests"] == 2
