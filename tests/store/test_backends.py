"""What holds for every backend's `Store` and `LogReader`, run against each (`log_store`:
SQLite, then PostgreSQL on its private cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from taskroute.exceptions import DuplicateFeedback, UnknownRequest
from taskroute.quality.feedback import make_feedback
from taskroute.store import LogReader, Store
from tests.store.test_reader import every_read
from tests.store.test_sqlite import a_decision, make_entry


async def test_implements_both_protocols_and_a_blank_log_reads_empty(log_store: Any) -> None:
    writer: Store = log_store
    assert isinstance(writer, LogReader)
    got = await every_read(log_store, ["req-none"])
    assert got["stats"]["rows"] == [] and got["stats"]["total"]["requests"] == 0
    assert got["timeseries"]["points"] == [] and got["ab"]["comparisons"] == []
    assert got["spend"] == {("day", ""): 0.0}
    assert got["catch_up"] == 0 and got["rated"] == [] and got["routes"] == []


async def test_feedback_counts_once_even_before_its_request_is_written(log_store: Any) -> None:
    log_store.add(make_entry("r1"))  # the writer writes only when flushed
    await log_store.add_feedback(make_feedback("r1", thumbs="down", text="wrong"), key_id="k2")
    with pytest.raises(DuplicateFeedback, match="already has feedback"):
        await log_store.add_feedback(make_feedback("r1", thumbs="up"))
    with pytest.raises(UnknownRequest):
        await log_store.add_feedback(make_feedback("r2", thumbs="up"))
    stats = await log_store.route_stats(since_s=None)
    assert stats["total"]["feedback"] == 1 and stats["total"]["score"] == 0.0


async def test_flush_writes_what_was_added_and_routes_find_many_ids(log_store: Any) -> None:
    ids = [f"r{i}" for i in range(1200)]
    for request_id in ids:
        log_store.add(make_entry(request_id, escalate=request_id.endswith("7")))
    log_store.add_shadow("r1", a_decision())
    await log_store.flush()
    found = await log_store.request_routes([*ids, "nope", "r1"])
    assert sorted(r.request_id for r in found) == sorted(ids)
    assert sum(r.escalated for r in found) == 120
    assert (await log_store.catch_up()) == 1200
    assert (await log_store.route_stats(since_s=None))["total"]["requests"] == 1200


async def test_a_closed_store_refuses_writes_and_reads(log_store: Any) -> None:
    await log_store.aclose()
    await log_store.aclose()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        log_store.add(make_entry("late"))
    with pytest.raises(RuntimeError, match="closed"):
        await log_store.route_stats()
