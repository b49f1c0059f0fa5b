"""The PostgreSQL request log on a real private server: the same figures as SQLite from the same
requests, migrations, idempotent writes, and acknowledged rows kept through the server going
away (spooled, then replayed: none lost, none written twice)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskroute.exceptions import ConfigError, StoreUnavailable
from taskroute.policy.loader import load_default_policy
from taskroute.quality.feedback import make_feedback
from taskroute.records import Attempt, AttemptStatus, RouteRecord
from taskroute.store.base import LogEntry, Refusal
from taskroute.store.postgres import PostgresStore
from taskroute.store.postgres_migrations import MIGRATIONS, migrate
from taskroute.store.postgres_spool import Spool
from taskroute.store.registry import open_store
from taskroute.store.sqlite import SqliteStore, attempt_rows, request_row
from tests.servers import PostgresCluster
from tests.store.conftest import StoreFactory
from tests.store.test_reader import every_read
from tests.store.test_sqlite import a_decision, make_entry

POLICY = load_default_policy()


def varied_entries(n: int, seed: int = 3) -> list[LogEntry]:
    """Requests across the default policy's tasks and tiers, with retries, rejections,
    escalations, errors, two variants and first tokens, spread over the last three hours."""
    rng = random.Random(seed)
    tasks = list(POLICY.tasks.values())
    now = time.time()
    entries = []
    for i in range(n):
        spec = tasks[i % len(tasks)]
        chain = POLICY.tier(spec.tier).chain
        ts = now - rng.random() * 3 * 3600
        statuses: list[AttemptStatus] = rng.choice(
            [["ok"], ["rejected", "ok"], ["error", "ok"], ["error"]])
        attempts = [Attempt(model=chain[min(k, len(chain) - 1)],
                            deployment=chain[min(k, len(chain) - 1)],
                            role="first" if k == 0 else "escalation", status=status,
                            started_at=ts, latency_s=rng.lognormvariate(-1, 0.6),
                            first_token_s=rng.random() / 5 if rng.random() < 0.7 else None,
                            input_tokens=rng.randrange(10, 900),
                            output_tokens=rng.randrange(500),
                            cost_usd=rng.random() / 1000)
                    for k, status in enumerate(statuses)]
        answered = attempts[-1].model if attempts[-1].status == "ok" else None
        decision = replace(a_decision(), task=spec.name, tier=spec.tier, model=chain[0],
                           chain=tuple(chain))
        record = RouteRecord(
            request_id=f"req-{i:05d}", decision=decision, attempts=attempts,
            answered_by=answered, status="ok" if answered else "error",
            latency_s=sum(a.latency_s for a in attempts), started_at=ts,
            first_token_s=attempts[0].first_token_s)
        entries.append(LogEntry(record=record, api="openai", user=f"u{i % 7}",
                                api_key_id=f"k{i % 3}", variant=("A", "B", None)[i % 3],
                                prompt=f"prompt {i}", answer="an answer" if answered else None))
    return entries


def refusal(i: int, status: int = 429) -> Refusal:
    return Refusal(request_id=f"ref-{i}", ts=time.time() - 5, api="openai",
                   path="/v1/chat/completions", http_status=status, type="rate_limit_error",
                   reason="too many", user="u1")


async def fill(store: Any, entries: list[LogEntry]) -> None:
    for entry in entries:
        store.add(entry)
    for i in range(5):
        store.add_refused(refusal(i, 429 if i % 2 else 400))
    await store.flush()
    rng = random.Random(11)
    for entry in entries[::9]:
        await store.add_feedback(make_feedback(entry.record.request_id,
                                               score=rng.random(),
                                               corrected=rng.random() < 0.3), key_id="k0")


def rounded(value: Any) -> Any:
    """`value` with every float to 9 significant digits (the two engines sum in their own
    order), dataclasses as dicts, recursively."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return rounded({f: getattr(value, f) for f in value.__dataclass_fields__})
    return value


def without_timing(report: dict[str, Any]) -> dict[str, Any]:
    stats = dict(report["stats"])
    stats.pop("query_ms")
    stats.pop("until")
    return {**report, "stats": stats}


async def test_every_read_gives_the_same_figures_as_sqlite(
    open_pg: StoreFactory, tmp_path: Path
) -> None:
    entries = varied_entries(400)
    ids = [e.record.request_id for e in entries[::13]] + ["missing"]
    sqlite = SqliteStore(tmp_path / "log.db")
    pg = open_pg()
    try:
        for store in (sqlite, pg):
            await fill(store, entries)
        # a window that starts inside an hour reads the edge from the log, the rest rolled up
        half = {name: {
            by: await store.route_stats(since_s=5400, by=by, tier_order=POLICY.tier_names)
            for by in ("route", "model", "policy")} for name, store in (("s", sqlite), ("p", pg))}
        got = [without_timing(await every_read(store, ids)) for store in (sqlite, pg)]
    finally:
        await sqlite.aclose()
    for report in got:
        report["routes"] = sorted(report["routes"], key=lambda r: r.request_id)
    assert got[0]["stats"]["total"]["requests"] == 400
    assert got[0]["stats"]["refused"] == {"requests": 5, "by_status": {"400": 3, "429": 2}}
    assert got[0]["ab"]["variants"] and got[0]["rated"]
    for key in ("stats", "timeseries", "ab", "spend", "rated", "routes"):
        assert rounded(got[1][key]) == rounded(got[0][key]), key
    for by, report in half["s"].items():
        mine = half["p"][by]
        for r in (report, mine):
            r.pop("query_ms")
        assert rounded(mine) == rounded(report), by


async def test_the_schema_is_migrated_once_and_an_unknown_migration_refused(
    open_pg: StoreFactory, postgres_cluster: PostgresCluster, pg_url: str
) -> None:
    open_pg().close()
    open_pg().close()  # a second open runs nothing
    database = pg_url.rsplit("/", 1)[1]
    names = postgres_cluster.psql(database, "SELECT name FROM schema_migrations ORDER BY seq")
    assert names.split() == [name for name, _ in MIGRATIONS]
    postgres_cluster.psql(database, "INSERT INTO schema_migrations (name, applied_at) "
                                    "VALUES ('9999_from_the_future', 0)")
    with pytest.raises(RuntimeError, match="9999_from_the_future"):
        open_pg()


async def test_a_request_written_twice_lands_once_and_is_counted_once(
    open_pg: StoreFactory, postgres_cluster: PostgresCluster, pg_url: str, tmp_path: Path
) -> None:
    entry = make_entry("r1", escalate=True)
    spooled = Spool(tmp_path / "spool")  # as if a commit's reply was lost: rows in the spool too
    spooled.append([("e", list(request_row(entry)), [list(a) for a in attempt_rows(entry)])])
    spooled.close()
    store = open_pg()
    store.add(entry)
    await store.flush()
    await wait_for(lambda: not store.spool.has_any())
    database = pg_url.rsplit("/", 1)[1]
    assert postgres_cluster.psql(database, "SELECT count(*) FROM requests").strip() == "1"
    assert postgres_cluster.psql(database, "SELECT count(*) FROM attempts").strip() == "2"
    assert (await store.route_stats(since_s=None))["total"]["requests"] == 1


async def test_stopping_and_restarting_the_server_mid_load_loses_and_doubles_nothing(
    open_pg: StoreFactory, postgres_cluster: PostgresCluster, pg_url: str
) -> None:
    store: PostgresStore = open_pg(ack_timeout_s=0.3, retry_s=0.1)
    total, acknowledged = 600, 0
    deadline = time.monotonic() + 40

    async def load() -> None:
        nonlocal acknowledged
        for i in range(total):
            if time.monotonic() > deadline:
                return
            store.add(make_entry(f"load-{i:04d}"))
            await asyncio.wait_for(store.acknowledged(), 5)  # never hangs on a dead server
            acknowledged += 1
            await asyncio.sleep(0.005)

    async def outage() -> None:
        await wait_for(lambda: acknowledged >= total // 3)
        await asyncio.to_thread(postgres_cluster.stop, "immediate")  # a crash, mid-commit
        await asyncio.sleep(0.5)
        await asyncio.to_thread(postgres_cluster.start)

    await asyncio.gather(load(), outage())
    assert acknowledged == total
    assert store.spool.spooled > 0  # the outage was felt: some went to the spool
    await wait_for(lambda: not store.spool.has_any())
    database = pg_url.rsplit("/", 1)[1]
    counted = postgres_cluster.psql(
        database, "SELECT count(*), count(DISTINCT request_id) FROM requests").strip()
    assert counted == f"{total}|{total}"
    assert (await store.route_stats(since_s=None))["total"]["requests"] == total


async def test_while_the_server_is_down_answers_are_acknowledged_from_the_spool(
    open_pg: StoreFactory, postgres_cluster: PostgresCluster
) -> None:
    store: PostgresStore = open_pg(ack_timeout_s=0.5, retry_s=0.1)
    postgres_cluster.stop()
    try:
        store.add(make_entry("down-1"))
        store.add_refused(refusal(1))
        started = time.monotonic()
        await asyncio.wait_for(store.acknowledged(), 3)
        assert time.monotonic() - started < 2.5
        assert store.spool.spooled == 2
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.route_stats(since_s=None)
    finally:
        postgres_cluster.start()
    await wait_for(lambda: not store.spool.has_any())
    stats = await store.route_stats(since_s=None)
    assert stats["total"]["requests"] == 1 and stats["refused"]["requests"] == 1


async def test_past_the_memory_bound_adds_wait_on_disk(open_pg: StoreFactory) -> None:
    store: PostgresStore = open_pg(interval_s=3600, memory_max=5)
    for i in range(20):
        store.add(make_entry(f"m{i}"))
    assert store.spool.spooled == 15
    await store.flush()
    await wait_for(lambda: not store.spool.has_any())
    assert (await store.route_stats(since_s=None))["total"]["requests"] == 20


async def test_two_replicas_on_one_database_count_each_request_once(
    open_pg: StoreFactory, tmp_path: Path
) -> None:
    one, two = open_pg(spool_dir=tmp_path / "one"), open_pg(spool_dir=tmp_path / "two")
    entries = varied_entries(300)
    for i, entry in enumerate(entries):
        (one if i % 2 else two).add(entry)
    await asyncio.gather(one.flush(), two.flush())
    rolled = await asyncio.gather(one.catch_up(), two.catch_up())  # side by side: split
    assert sum(rolled) == 300
    await two.add_feedback(make_feedback(entries[1].record.request_id, thumbs="up"))  # one's
    seen = [await store.route_stats(since_s=None) for store in (one, two)]
    for stats in seen:
        stats.pop("query_ms")
        stats.pop("until")
    assert seen[0] == seen[1]
    assert seen[0]["total"]["requests"] == 300 and seen[0]["total"]["feedback"] == 1


def rescued_entry(request_id: str) -> LogEntry:
    """A stream broken mid-answer, continued by a rescue, whose whole answer then failed its
    gates: status "rejected", an attempt in the "rescue" role, the seam recorded."""
    entry = make_entry(request_id)
    first = replace(entry.record.attempts[0], status="error")
    rescue = replace(first, role="rescue", status="rejected", model="sim/medium",
                     deployment="sim/medium")
    record = replace(entry.record, attempts=[first, rescue], status="rejected",
                     seam_chars=42, rescued_by="sim/medium")
    return replace(entry, record=record)


async def test_an_older_schema_migrates_and_keeps_rescues_and_old_spooled_rows(
    postgres_cluster: PostgresCluster, pg_url: str, open_pg: StoreFactory, tmp_path: Path
) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:
        assert await migrate(conn, upto="0001_request_log") == ["0001_request_log"]
    finally:
        await conn.close()
    spooled = Spool(tmp_path / "spool")  # spooled before the rescue columns: 34 of them
    old = make_entry("spooled-old")
    spooled.append([("e", list(request_row(old))[:34], [list(a) for a in attempt_rows(old)])])
    spooled.close()
    store = open_pg()
    store.add(rescued_entry("rescued"))
    await store.flush()
    await wait_for(lambda: not store.spool.has_any())
    database = pg_url.rsplit("/", 1)[1]
    got = postgres_cluster.psql(database, "SELECT request_id, status, seam_chars, rescued_by "
                                          "FROM requests ORDER BY request_id")
    assert got.split() == ["rescued|rejected|42|sim/medium", "spooled-old|ok||"]
    roles = postgres_cluster.psql(database, "SELECT role, status FROM attempts "
                                            "WHERE request_id = 'rescued' ORDER BY seq")
    assert roles.split() == ["first|error", "rescue|rejected"]
    stats = await store.route_stats(since_s=None)
    assert stats["total"]["requests"] == 2


async def test_feedback_from_before_0008_names_its_class_by_its_text(
    open_pg: StoreFactory, pg_url: str
) -> None:
    import asyncpg

    from taskroute.store.sqlite import REQUEST_COLUMNS
    from tests.store.test_sqlite import OLD_FEEDBACK, old_feedback

    old = replace(make_entry("old"), prompt="Fix the spinner.", answer="Ok.")
    conn = await asyncpg.connect(pg_url)
    try:
        await migrate(conn, upto="0007_shadow_facts")
        await conn.copy_records_to_table("requests", records=[request_row(old)],
                                         columns=list(REQUEST_COLUMNS))
        await conn.execute(OLD_FEEDBACK.format(marks=", ".join(f"${i}" for i in range(1, 15))),
                           *old_feedback(old, "task: coding"))
    finally:
        await conn.close()
    store = open_pg()  # migrates to 0008
    store.add(replace(make_entry("new"), prompt="Sort the list.", answer="Ok."))
    await store.flush()
    await store.add_feedback(make_feedback("new", corrected=True, task="coding",
                                           text="task: qa"))
    rated = [(a.prompt, a.named_task, a.feedback_task) for a in await store.rated_answers()]
    assert rated == [("Fix the spinner.", None, "coding"), ("Sort the list.", "coding", "coding")]
    stats = await store.route_stats(since_s=None)
    assert stats["misroutes"]["pairs"] == [
        {"served": old.record.decision.task, "named": "coding", "requests": 2}]


async def test_prune_leaves_a_request_another_replica_is_rolling_up(
    open_pg: StoreFactory, pg_url: str
) -> None:
    import asyncpg

    store: PostgresStore = open_pg()
    old = make_entry("old")
    old = replace(old, record=replace(old.record, started_at=time.time() - 40 * 86400))
    store.add(old)
    await store.flush()
    other = await asyncpg.connect(pg_url)
    try:
        async with other.transaction():  # as a replica's catch-up holds it, mid-roll-up
            await other.execute("SELECT 1 FROM unrolled WHERE request_id = 'old' FOR UPDATE")
            assert await store.prune(time.time() - 30 * 86400, 10) == 0
    finally:
        await other.close()
    assert await store.prune(time.time() - 30 * 86400, 10) == 1  # summed now, then gone
    assert (await store.route_stats(since_s=None))["total"]["requests"] == 1


async def wait_for(condition: Any, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_the_registry_opens_both_schemes_and_a_dead_server_is_one_line(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKROUTE_SPOOL_DIR", str(tmp_path / "spool"))
    for url in (pg_url, pg_url.replace("postgresql://", "postgres://")):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        store.close()
    with pytest.raises(StoreUnavailable, match=r"cannot reach .*postgres:\*\*\*@127\.0\.0\.1"):
        open_store("postgresql://postgres:hunter2@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match="needs a server"):
        open_store("postgresql://")



def test_taskroute_stats_reads_the_postgres_log_named_by_the_environment(
    open_pg: StoreFactory, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from taskroute.cli.main import main

    store = open_pg()
    for i in range(3):
        store.add(make_entry(f"cli-{i}"))
    store.close()
    monkeypatch.setenv("TASKROUTE_DATABASE_URL", pg_url)
    monkeypatch.setenv("TASKROUTE_SPOOL_DIR", str(tmp_path / "cli-spool"))
    assert main(["stats", "--since", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 3
    monkeypatch.delenv("TASKROUTE_DATABASE_URL")
    assert main(["stats", "--since", "all", "--json", "--db", pg_url]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 3
