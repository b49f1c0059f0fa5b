"""What holds for every backend's `Store` and `LogReader`, run against each (`log_store`:
SQLite, then PostgreSQL on its private cluster)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from taskroute.exceptions import DuplicateFeedback, UnknownRequest
from taskroute.quality.feedback import make_feedback, task_named
from taskroute.records import RecordStatus
from taskroute.store import LogReader, Store
from taskroute.store.base import LogEntry, Refusal, ResponseStore, StoredResponse
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


async def test_a_rated_answer_carries_the_feedback_text_that_names_its_class(
    log_store: Any
) -> None:
    log_store.add(dataclasses.replace(make_entry("r1"), prompt="Fix the flickering spinner.",
                                      answer="Ok."))
    log_store.add(dataclasses.replace(make_entry("r2"), prompt="Hi there", answer="Hello."))
    await log_store.flush()
    await log_store.add_feedback(make_feedback("r1", corrected=True, text="Task: coding"))
    await log_store.add_feedback(make_feedback("r2", thumbs="up", text="nice"))
    first, second = await log_store.rated_answers()
    assert (first.prompt, first.text, task_named(first.text)) == (
        "Fix the flickering spinner.", "Task: coding", "coding")
    assert (first.named_task, first.feedback_task) == (None, "coding")  # the text's, no field
    assert (second.text, task_named(second.text), second.feedback_task) == ("nice", None, None)


async def test_feedback_names_the_class_by_its_task_field_first_then_by_its_text(
    log_store: Any
) -> None:
    served = make_entry("x").record.decision.task
    given = {  # request id: (the feedback's task, its text)
        "field": ("coding", None), "both": ("coding", "task: qa"), "text": (None, "Task: qa"),
        "other": (None, "the task list was wrong"), "same": (served, None), "bare": (None, None),
    }
    for request_id in given:
        log_store.add(dataclasses.replace(make_entry(request_id), prompt=f"about {request_id}",
                                          answer="Ok."))
    await log_store.flush()
    for request_id, (task, text) in given.items():
        await log_store.add_feedback(make_feedback(request_id, corrected=True, task=task,
                                                   text=text))
    rated = {a.prompt.removeprefix("about "): a for a in await log_store.rated_answers()}
    assert {k: (a.named_task, a.text) for k, a in rated.items()} == given  # as stored
    assert {k: a.feedback_task for k, a in rated.items()} == {
        "field": "coding", "both": "coding", "text": "qa", "other": None, "same": served,
        "bare": None}
    stats = await log_store.route_stats(since_s=None)
    assert stats["misroutes"] == {"named": 4, "misrouted": 3, "pairs": [
        {"served": served, "named": "coding", "requests": 2},
        {"served": served, "named": "qa", "requests": 1}]}
    assert (await log_store.route_stats(since_s=60, now=time.time() + 3600))["misroutes"] == {
        "named": 0, "misrouted": 0, "pairs": []}  # the window holds no request


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


DAY = 86400.0


def aged(request_id: str, age_s: float) -> LogEntry:
    entry = make_entry(request_id)
    record = dataclasses.replace(entry.record, started_at=time.time() - age_s)
    return dataclasses.replace(entry, record=record)


async def test_prune_deletes_one_batch_of_old_rows_and_the_sums_keep_them(
    log_store: Any,
) -> None:
    for i in range(25):
        log_store.add(aged(f"old{i}", 40 * DAY))
    log_store.add(aged("new", 0))
    log_store.add_refused(Refusal("ref-old", time.time() - 40 * DAY, "openai", "/v1/x", 400,
                                  "invalid_request_error", "bad"))
    await log_store.flush()
    await log_store.add_feedback(make_feedback("old3", thumbs="up"))
    before = time.time() - 30 * DAY
    assert [await log_store.prune(before, 10) for _ in range(4)] == [10, 10, 5, 0]
    left = await log_store.request_routes([f"old{i}" for i in range(25)] + ["new"])
    assert [r.request_id for r in left] == ["new"]
    stats = await log_store.route_stats(since_s=None)
    assert stats["total"]["requests"] == 26  # the hourly sums still hold the pruned ones
    assert stats["refused"]["requests"] == 0 and stats["total"]["feedback"] == 0


async def test_feedback_with_an_owner_counts_only_on_that_keys_requests(log_store: Any) -> None:
    log_store.add(make_entry("mine"))  # logged with the key fingerprint k1
    with pytest.raises(UnknownRequest, match="made with this key"):
        await log_store.add_feedback(make_feedback("mine", thumbs="up"), owner="k2")
    await log_store.add_feedback(make_feedback("mine", thumbs="up"), key_id="k1", owner="k1")
    assert (await log_store.route_stats(since_s=None))["total"]["feedback"] == 1


async def test_a_stored_response_is_read_back_even_before_its_write(log_store: Any) -> None:
    assert isinstance(log_store, ResponseStore)
    conversation = b'[{"role": "user", "content": "hi\\nthere"}]'
    log_store.add_response(StoredResponse("resp_1", "r1", conversation, "k1"))
    got = await log_store.stored_response("resp_1")
    assert got == StoredResponse("resp_1", "r1", conversation, "k1")
    assert await log_store.stored_response("resp_none") is None


async def test_the_shadow_report_joins_decisions_requests_attempts_and_feedback(
    log_store: Any,
) -> None:
    from taskroute.policy.model import Price

    decision = a_decision()
    elsewhere = dataclasses.replace(decision, model=decision.chain[1], tier="other",
                                    policy="candidate")
    same = dataclasses.replace(decision, policy="candidate")
    for i in range(4):                            # r0, r2 escalate to chain[1]: the shadow's pick
        log_store.add(make_entry(f"r{i}", escalate=i % 2 == 0))
        log_store.add_shadow(f"r{i}", elsewhere if i < 3 else same)
    log_store.add(make_entry("no-shadow"))
    await log_store.flush()
    await log_store.add_feedback(make_feedback("r0", thumbs="up"))
    await log_store.add_feedback(make_feedback("r1", thumbs="down"))
    price = Price(input=1.0, output=10.0)
    report = await log_store.shadow_report(since_s=3600, prices={decision.chain[1]: price})
    (got,) = report["policies"]
    assert got["requests"] == 4 and got["agreement"]["model"] == 0.25
    assert got["agreement"]["tier"] == 0.25 and got["agreement"]["task"] == 1.0
    assert got["unpriced_models"] == [decision.model] and got["priced_requests"] == 3
    # r0 and r2 answered by the escalation (7 out), r1 by the first pick (5 out); 10 in
    assert got["shadow_cost_usd"] == pytest.approx((3 * 10 * 1.0 + (7 + 5 + 7) * 10.0) / 1e6)
    assert got["served_cost_usd"] == pytest.approx(0.011 * 2 + 0.001 * 2)
    quality = got["quality"]
    assert (quality["shadow"]["feedback"]["good"], quality["shadow"]["feedback"]["n"]) == (1, 1)
    assert (quality["served"]["feedback"]["good"], quality["served"]["feedback"]["n"]) == (1, 2)
    assert (quality["shadow"]["gates"]["good"], quality["shadow"]["gates"]["n"]) == (3, 3)
    assert (quality["served"]["gates"]["good"], quality["served"]["gates"]["n"]) == (2, 4)
    assert (await log_store.shadow_report(since_s=3600, prices={}, now=time.time() + 7200)
            )["policies"] == []                   # out of the window


def _served_variants(request_id: str) -> list[LogEntry]:
    """Requests whose facts differ in every way the shadow report reads: escalated, failed
    over after an upstream error (larger prompt on the retry), answered unchecked, every
    attempt rejected, and failed before any attempt."""
    plain, escalated = make_entry(f"{request_id}-ok"), make_entry(f"{request_id}-up",
                                                                     escalate=True)
    first = plain.record.attempts[0]
    failed = dataclasses.replace(first, status="error", output_tokens=0, verdicts=())
    retried = dataclasses.replace(first, input_tokens=30, output_tokens=9)
    unchecked = dataclasses.replace(first, status="unchecked", verdicts=())
    rejected = dataclasses.replace(first, status="rejected")

    def variant(suffix: str, attempts: list[Any], status: RecordStatus = "ok") -> LogEntry:
        record = dataclasses.replace(plain.record, request_id=f"{request_id}-{suffix}",
                                     attempts=attempts, status=status)
        return dataclasses.replace(plain, record=record)

    return [plain, escalated, variant("retry", [failed, retried]),
            variant("unchecked", [unchecked]), variant("rejected", [rejected, rejected],
                                                       "rejected"),
            variant("none", [], "error")]


async def test_the_shadow_facts_logged_with_a_decision_match_the_join(log_store: Any) -> None:
    """Each request logged twice, once with its shadow decision's served facts (the fast path)
    and once without (a decision logged before they were kept: joined to its request and
    attempts); the two shadow policies' reports must agree figure for figure."""
    from taskroute.policy.model import Price

    decision = a_decision()
    picks = [decision, dataclasses.replace(decision, model=decision.chain[1], tier="other"),
             dataclasses.replace(decision, model="unpriced/model", task="coding")]
    for i, pick in enumerate(picks):
        for policy, served in (("logged", True), ("joined", False)):
            for entry in _served_variants(f"{policy}{i}"):
                log_store.add(entry)
                log_store.add_shadow(entry.record.request_id,
                                     dataclasses.replace(pick, policy=policy),
                                     served=entry.record if served else None)
    await log_store.flush()
    for policy in ("logged", "joined"):
        for i, thumbs in enumerate(("up", "down", "up")):
            await log_store.add_feedback(make_feedback(f"{policy}{i}-up", thumbs=thumbs))
        await log_store.add_feedback(make_feedback(f"{policy}0-retry", corrected=True))
    report = await log_store.shadow_report(since_s=3600, prices={
        decision.model: Price(input=0.5, output=2.0), decision.chain[1]: Price(1.0, 10.0)})
    joined, logged = report["policies"]
    assert (joined["policy"], logged["policy"]) == ("joined", "logged")
    assert logged["requests"] == 18 and logged["quality"]["served"]["feedback"]["n"] == 4
    assert {**logged, "policy": "joined"} == joined


async def test_minute_buckets_cover_the_recent_past_and_hours_the_rest(log_store: Any) -> None:
    from taskroute.policy.model import Price
    from taskroute.quality import timeseries

    now = time.time()
    ages = [30, 30, 150, 600, 3 * DAY]          # seconds ago; the last is past the minutes kept
    entries = [aged(f"m{i}", age) for i, age in enumerate(ages)]
    for entry in entries:
        log_store.add(entry)
    await log_store.flush()
    price = Price(input=1.0, output=10.0)
    minutes = await log_store.timeseries(since_s=None, baseline_model="strong",
                                         baseline_price=price, step="minute")
    want: dict[int, int] = {}
    for entry in entries[:-1]:
        t = int(entry.record.started_at // 60) * 60
        want[t] = want.get(t, 0) + 1
    assert minutes["step_s"] == 60
    assert {p["t"]: p["requests"] for p in minutes["points"]} == want
    assert minutes["cost_usd"] == pytest.approx(0.001 * 4)
    hours = await log_store.timeseries(since_s=None, baseline_model="strong",
                                       baseline_price=price)
    assert sum(p["requests"] for p in hours["points"]) == 5     # the hours keep everything
    window = await log_store.timeseries(since_s=300, baseline_model="strong",
                                        baseline_price=price, step="minute", now=now)
    assert sum(p["requests"] for p in window["points"]) == 3
    shown = timeseries.filled(window, now - 300, now)
    assert len(shown["points"]) in (6, 7) and shown["points"][-1]["t"] == int(now // 60) * 60
    assert sum(p["requests"] for p in shown["points"]) == 3
    assert shown["points"][-1]["saved_usd"] == pytest.approx(
        window["baseline_usd"] - window["cost_usd"])
