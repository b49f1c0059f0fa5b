"""Daily budgets (per user, per gateway key, in all) and the per-request cost cap: steps of
`Router.decide`, so the library, the CLI and the gateway give a request the same decision.

Where today's spend is kept is a seam, the `Spend` Protocol: `SpendTracker` keeps it in this
process's memory (seeded from the log when the gateway starts, added to as each request
finishes); a store shared by replicas implements the same two methods. `limit` turns a decision
into the one the budgets allow: unchanged, one tier down when a budget is running low (with the
reason), refused with 429 when a budget is used up; and `metadata.max_cost_usd` cuts the chain
to what fits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from taskroute.decision import Decision
from taskroute.exceptions import BudgetExhausted, InvalidRequest
from taskroute.policy.model import BudgetSpec, Policy
from taskroute.request import ChatRequest

Scope = tuple[str, str]  # ("user", id) | ("key", fingerprint) | ("day", "")
Estimate = Callable[[str], float]  # model id → the request's estimated cost on it


class Spend(Protocol):
    """Today's spend per scope, in USD: what the budgets are checked against."""

    def spent(self, scope: Scope, now: float | None = None) -> float: ...

    def add(self, cost: float, *, user: str | None, key: str | None,
            now: float | None = None) -> None:
        """Count one finished request's cost against every scope it belongs to."""
        ...


def day_start(now: float) -> float:
    return now - now % 86400


class SpendTracker:
    """Today's spend per scope, in USD. Thread-safe; forgets yesterday at midnight UTC."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day = day_start(time.time())
        self._spent: dict[Scope, float] = {}

    def _roll(self, now: float) -> None:
        today = day_start(now)
        if today != self._day:
            self._day, self._spent = today, {}

    def add(self, cost: float, *, user: str | None, key: str | None,
            now: float | None = None) -> None:
        with self._lock:
            self._roll(time.time() if now is None else now)
            for scope in _scopes(user, key):
                self._spent[scope] = self._spent.get(scope, 0.0) + cost

    def spent(self, scope: Scope, now: float | None = None) -> float:
        with self._lock:
            self._roll(time.time() if now is None else now)
            return self._spent.get(scope, 0.0)

    def restore(self, spent: Mapping[Scope, float], now: float | None = None) -> None:
        """Start from today's spend as the log has it (`LogReader.spend_today`)."""
        with self._lock:
            self._day, self._spent = day_start(time.time() if now is None else now), dict(spent)


def _scopes(user: str | None, key: str | None) -> list[Scope]:
    scopes: list[Scope] = [("day", "")]
    if user:
        scopes.append(("user", user))
    if key:
        scopes.append(("key", key))
    return scopes


def _describe(scope: Scope) -> str:
    kind, ident = scope
    return {"user": f"user {ident!r}", "key": f"key {ident}", "day": "the gateway"}[kind]


def check_budgets(
    budgets: BudgetSpec, spend: Spend, user: str | None, key: str | None
) -> str | None:
    """Raise when a budget is used up; the reason to step down when one runs low, else None."""
    limits = {"user": budgets.per_user_usd, "key": budgets.per_key_usd,
              "day": budgets.per_day_usd}
    low: str | None = None
    for scope in _scopes(user, key):
        limit = limits[scope[0]]
        if limit is None:
            continue
        left = limit - spend.spent(scope)
        if left <= 0:
            raise BudgetExhausted(
                f"the daily budget of ${limit:.2f} for {_describe(scope)} is used up "
                f"(${limit - left:.4f} spent today); it resets at 00:00 UTC"
            )
        if low is None and left < budgets.step_down_below * limit:
            low = (f"the daily budget for {_describe(scope)} is running low "
                   f"(${left:.4f} of ${limit:.2f} left, under {budgets.step_down_below:.0%})")
    return low


def step_down(decision: Decision, policy: Policy, why: str, input_tokens: int) -> Decision:
    """One tier down (when there is one below), the reason recorded."""
    names = policy.tier_names
    index = names.index(decision.tier) if decision.tier in names else 0
    if index == 0 or not decision.routed:
        return replace(decision, reasons=(*decision.reasons, f"Kept the {decision.tier} tier "
                                          f"although {why}: there is no tier below."))
    tier = policy.tiers[index - 1]
    chain = tuple(m for m in tier.chain if policy.models[m].context >= input_tokens) or tier.chain
    return replace(decision, tier=tier.name, model=chain[0], chain=chain, reasons=(
        *decision.reasons, f"Lowered from {decision.tier} to {tier.name} because {why}."))


def max_cost(request: ChatRequest) -> float | None:
    given = request.meta("max_cost_usd")
    if given is None:
        return None
    value: Any = given
    if isinstance(given, str):
        try:
            value = float(given)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidRequest(f"metadata.max_cost_usd is a positive number of USD, not "
                             f"{request.meta('max_cost_usd')!r}")
    return float(value)


def cap_chain(decision: Decision, cap: float, estimate: Estimate) -> Decision:
    """The chain cut to its longest start whose estimated costs add up to at most `cap`
    (every model the chain may call is paid for)."""
    kept: list[str] = []
    total = 0.0
    for model in decision.chain:
        cost = estimate(model)
        if total + cost > cap:
            break
        kept.append(model)
        total += cost
    if not kept:
        raise InvalidRequest(
            f"metadata.max_cost_usd is ${cap:.6f} but the first model, {decision.model}, is "
            f"estimated at ${estimate(decision.model):.6f} for this request"
        )
    if len(kept) == len(decision.chain):
        return decision
    dropped = decision.chain[len(kept):]
    return replace(decision, chain=tuple(kept), reasons=(
        *decision.reasons,
        f"Capped the chain by metadata.max_cost_usd (${cap:.6f}): no escalation to "
        f"{', '.join(dropped)} (the chain would cost about ${total + estimate(dropped[0]):.6f})."
    ))


def limit(
    decision: Decision, request: ChatRequest, policy: Policy, spend: Spend,
    key_id: str | None, estimate: Estimate,
) -> Decision:
    """The decision the policy's budgets and the request's `metadata.max_cost_usd` allow."""
    if policy.budgets is not None:
        user = request.user or request.meta("user_id")
        low = check_budgets(policy.budgets, spend, user, key_id)
        if low is not None:
            decision = step_down(decision, policy, low, decision.signals.input_tokens)
    cap = max_cost(request)
    if cap is not None:
        decision = cap_chain(decision, cap, estimate)
    return decision
