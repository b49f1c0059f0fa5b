"""Daily budgets per user, per gateway key and in all: spend tracking, the midnight reset,
restoring today's spend from the log, stepping down when low and refusing when used up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from taskroute.exceptions import BudgetExhausted
from taskroute.policy.model import BudgetSpec
from taskroute.quality.budgets import SpendTracker, check_budgets, day_start
from taskroute.store.sqlite import SqliteStore
from tests.quality.logbook import Logbook

NOON = 1_700_000_000 - 1_700_000_000 % 86400 + 43200.0  # a UTC noon


def test_spend_is_kept_per_user_per_key_and_in_all() -> None:
    spend = SpendTracker()
    spend.add(1.0, user="ann", key="k1", now=NOON)
    spend.add(2.0, user="bob", key="k1", now=NOON)
    spend.add(4.0, user=None, key=None, now=NOON)
    assert spend.spent(("user", "ann"), now=NOON) == 1.0
    assert spend.spent(("user", "bob"), now=NOON) == 2.0
    assert spend.spent(("key", "k1"), now=NOON) == 3.0
    assert spend.spent(("day", ""), now=NOON) == 7.0


def test_spend_resets_at_midnight_utc() -> None:
    spend = SpendTracker()
    spend.add(5.0, user="ann", key="k1", now=NOON)
    just_before = day_start(NOON) + 86399.0
    assert spend.spent(("day", ""), now=just_before) == 5.0
    assert spend.spent(("day", ""), now=just_before + 1.0) == 0.0
    assert spend.spent(("user", "ann"), now=just_before + 1.0) == 0.0


def test_per_key_budget_steps_down_then_refuses() -> None:
    budgets = BudgetSpec(per_key_usd=10.0, step_down_below=0.25)
    spend = SpendTracker()
    spend.add(7.0, user="ann", key="k1")
    assert check_budgets(budgets, spend, "ann", "k1") is None          # 3 of 10 left: fine
    spend.add(1.0, user="bob", key="k1")                                # another user, same key
    low = check_budgets(budgets, spend, "ann", "k1")
    assert low is not None and "key k1 is running low" in low
    assert check_budgets(budgets, spend, "ann", "k2") is None          # another key: fine
    spend.add(2.0, user="ann", key="k1")
    with pytest.raises(BudgetExhausted, match=r"\$10.00 for key k1 is used up") as err:
        check_budgets(budgets, spend, "ann", "k1")
    assert err.value.status_code == 429


def test_per_day_budget_counts_everyone() -> None:
    budgets = BudgetSpec(per_day_usd=5.0, per_user_usd=100.0)
    spend = SpendTracker()
    for user in ("a", "b", "c", "d", "e"):
        spend.add(1.0, user=user, key=None)
    with pytest.raises(BudgetExhausted, match="for the gateway is used up"):
        check_budgets(budgets, spend, "f", None)


async def test_spend_is_restored_from_todays_log(tmp_path: Path) -> None:
    book = Logbook(tmp_path / "log.db")
    book.add(user="ann", ts=NOON - 60, attempts=[("openai/gpt-4.1-mini", "ok", 1.5)])
    book.add(user="bob", ts=NOON - 30, attempts=[("openai/gpt-4.1-mini", "ok", 0.5)])
    book.add(user="ann", ts=NOON - 86400, attempts=[("openai/gpt-4.1-mini", "ok", 9.0)])
    book.close()
    with sqlite3.connect(tmp_path / "log.db") as conn:
        conn.execute("UPDATE requests SET api_key_id = 'k1'")
    conn.close()
    store = SqliteStore(tmp_path / "log.db")
    spent = await store.spend_today(now=NOON)                    # yesterday's row is ignored
    await store.aclose()
    assert spent == pytest.approx({("user", "ann"): 1.5, ("user", "bob"): 0.5,
                                   ("key", "k1"): 2.0, ("day", ""): 2.0})
    spend = SpendTracker()
    spend.add(7.0, user="ann", key=None, now=NOON)              # replaced by what the log says
    spend.restore(spent, now=NOON)
    assert spend.spent(("user", "ann"), now=NOON) == pytest.approx(1.5)
    assert spend.spent(("key", "k1"), now=NOON) == pytest.approx(2.0)
    assert spend.spent(("day", ""), now=NOON) == pytest.approx(2.0)
    assert spend.spent(("day", ""), now=NOON + 86400) == 0.0    # and forgotten tomorrow


def test_a_hold_counts_until_it_settles_to_the_actual_cost() -> None:
    spend = SpendTracker()
    limits = {("day", ""): 1.0}
    first = spend.reserve(0.6, user=None, key=None, limits=limits, now=NOON)
    assert spend.spent(("day", ""), now=NOON) == pytest.approx(0.6)
    with pytest.raises(BudgetExhausted, match="taken by requests in flight") as caught:
        spend.reserve(0.6, user=None, key=None, limits=limits, now=NOON)
    assert caught.value.retry_after == 1.0                  # they finish soon
    spend.settle(first, 0.1, user=None, key=None, now=NOON)
    assert spend.spent(("day", ""), now=NOON) == pytest.approx(0.1)
    second = spend.reserve(0.6, user=None, key=None, limits=limits, now=NOON)
    spend.settle(second, 0.95, user=None, key=None, now=NOON)
    with pytest.raises(BudgetExhausted, match="is used up") as caught:
        spend.reserve(0.01, user=None, key=None, limits=limits, now=NOON)
    assert caught.value.retry_after == pytest.approx(43200.0)   # seconds to midnight UTC


def test_small_budgets_print_their_digits() -> None:
    spend = SpendTracker()
    spend.add(0.0009, user="ann", key=None, now=NOON)
    with pytest.raises(BudgetExhausted, match=r"budget of \$0\.0005 for user 'ann'.*\$0\.0009"):
        check_budgets(BudgetSpec(per_user_usd=0.0005), spend, "ann", None, now=NOON)


async def test_concurrent_requests_cannot_spend_past_the_budget(tmp_path: Path) -> None:
    import asyncio

    from taskroute.demo.policy import simulated_policy_text
    from taskroute.policy.loader import default_policy_text, parse_policy
    from taskroute.providers.simulated import SimulatedUpstream
    from taskroute.router import Router

    async with SimulatedUpstream() as upstream:
        text = simulated_policy_text(default_policy_text(), upstream.url)
        probe = Router(parse_policy(text), classifier=False)
        one = (await probe.complete({"messages": [{"role": "user", "content": "hi there"}]}))
        await probe.aclose()
        single = one.record.total_cost_usd
        budget = 5 * single
        router = Router(parse_policy(text + f"budgets:\n  per day: {budget}\n"),
                        classifier=False)
        gate = asyncio.Semaphore(32)
        costs: list[float] = []

        async def ask(i: int) -> None:
            async with gate:
                try:
                    result = await router.complete(
                        {"messages": [{"role": "user", "content": "hi there"}]})
                except BudgetExhausted:
                    return
                costs.append(result.record.total_cost_usd)

        try:
            await asyncio.gather(*(ask(i) for i in range(200)))
        finally:
            await router.aclose()
    spent = router.spend.spent(("day", ""))
    assert costs and spent == pytest.approx(sum(costs))
    assert spent <= budget + max(costs) + 1e-12, (spent / budget, len(costs))
