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
from dataclasses import dataclass, replace
from typing import Any, Protocol

from taskroute.decision import Decision
from taskroute.exceptions import BudgetExhausted, InvalidRequest
from taskroute.policy.model import BudgetSpec, Policy
from taskroute.request import ChatRequest

Scope = tuple[str, str]  # ("user", id) | ("key", fingerprint) | ("day", "")
Estimate = Callable[[str], float]  # model id → the request's estimated cost on it


@dataclass(frozen=True, slots=True)
class Hold:
    """Spend held for one request in flight, from its admission until it settles."""

    amount: float
    scopes: tuple[Scope, ...]
    day: float
    where: str = "local"   # which counters hold it ("redis": the replicas' shared ones)
    id: str = ""           # what a shared settlement is keyed by, so it applies once


class Spend(Protocol):
    """Today's spend per scope, in USD: what the budgets are checked against.

    A request is admitted by `reserve`, which holds its estimated cost against every scope it
    belongs to in one atomic step — refusing it when that would pass a limit — and ends with
    `settle`, which swaps the hold for what it actually cost. So requests in flight together
    cannot spend past a budget by all passing the check before any of them is paid for. A
    shared counter (one for several replicas) implements the same three methods atomically."""

    def spent(self, scope: Scope, now: float | None = None) -> float:
        """Settled spend plus what requests in flight hold."""
        ...

    def reserve(self, amount: float, *, user: str | None, key: str | None,
                limits: Mapping[Scope, float], now: float | None = None) -> Hold:
        """Hold `amount`; `BudgetExhausted` if any scope would pass its limit."""
        ...

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        """Count a finished request's `cost` in place of its hold (when it had one)."""
        ...


class SpentReader(Protocol):
    """What deciding reads of the spend: `Spend`, or `Known` (fetched before deciding)."""

    def spent(self, scope: Scope, now: float | None = None) -> float: ...


class Known:
    """Today's spend per scope as fetched from shared counters just before deciding."""

    def __init__(self, spent: Mapping[Scope, float]) -> None:
        self._spent = spent

    def spent(self, scope: Scope, now: float | None = None) -> float:
        return self._spent.get(scope, 0.0)


def day_start(now: float) -> float:
    return now - now % 86400


def seconds_to_reset(now: float) -> float:
    return day_start(now) + 86400 - now


class SpendTracker:
    """Today's spend per scope, in USD, in this process. Thread-safe; forgets yesterday at
    midnight UTC (and the holds taken yesterday with it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day = day_start(time.time())
        self._spent: dict[Scope, float] = {}
        self._held: dict[Scope, float] = {}

    def _roll(self, now: float) -> None:
        today = day_start(now)
        if today != self._day:
            self._day, self._spent, self._held = today, {}, {}

    def spent(self, scope: Scope, now: float | None = None) -> float:
        with self._lock:
            self._roll(time.time() if now is None else now)
            return self._spent.get(scope, 0.0) + self._held.get(scope, 0.0)

    def reserve(self, amount: float, *, user: str | None, key: str | None,
                limits: Mapping[Scope, float], now: float | None = None) -> Hold:
        now = time.time() if now is None else now
        scopes = tuple(_scopes(user, key))
        with self._lock:
            self._roll(now)
            for scope in scopes:
                limit = limits.get(scope)
                if limit is None:
                    continue
                settled = self._spent.get(scope, 0.0)
                held = self._held.get(scope, 0.0)
                # the day's first request is admitted whatever its estimate (at most one
                # request's cost over); after it, what is held counts as spent
                if settled >= limit or (settled + held > 0 and settled + held + amount > limit):
                    raise _refusal(scope, limit, settled, held, now)
            for scope in scopes:
                self._held[scope] = self._held.get(scope, 0.0) + amount
            return Hold(amount, scopes, self._day)

    def settle(self, hold: Hold | None, cost: float, *, user: str | None, key: str | None,
               now: float | None = None) -> None:
        with self._lock:
            self._roll(time.time() if now is None else now)
            if hold is not None and hold.day == self._day:
                for scope in hold.scopes:
                    self._held[scope] = max(0.0, self._held.get(scope, 0.0) - hold.amount)
            for scope in _scopes(user, key):
                self._spent[scope] = self._spent.get(scope, 0.0) + cost

    def scopes(self) -> list[Scope]:
        """Every scope with spend (settled or held) today, for the metrics."""
        with self._lock:
            self._roll(time.time())
            return list({**self._spent, **self._held})

    def add(self, cost: float, *, user: str | None, key: str | None,
            now: float | None = None) -> None:
        """Count `cost` with no hold (what `settle(None, ...)` does)."""
        self.settle(None, cost, user=user, key=key, now=now)

    def restore(self, spent: Mapping[Scope, float], now: float | None = None) -> None:
        """Start from today's spend as the log has it (`LogReader.spend_today`)."""
        with self._lock:
            self._day, self._spent = day_start(time.time() if now is None else now), dict(spent)


def scopes_of(user: str | None, key: str | None) -> list[Scope]:
    """Every scope a request's spend counts in: the day, its user's, its key's."""
    return _scopes(user, key)


def _scopes(user: str | None, key: str | None) -> list[Scope]:
    scopes: list[Scope] = [("day", "")]
    if user:
        scopes.append(("user", user))
    if key:
        scopes.append(("key", key))
    return scopes


def limits_of(budgets: BudgetSpec, user: str | None, key: str | None) -> dict[Scope, float]:
    """Each scope of a request with its daily limit (scopes without one are left out)."""
    per = {"user": budgets.per_user_usd, "key": budgets.per_key_usd, "day": budgets.per_day_usd}
    return {scope: limit for scope in _scopes(user, key)
            if (limit := per[scope[0]]) is not None}


def usd(amount: float) -> str:
    """Dollars as people read them: cents for a dollar or more, else enough digits to see."""
    if amount == 0 or abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0").rstrip(".") if abs(amount) >= 1e-6 else f"${amount:.2e}"


def refusal(scope: Scope, limit: float, settled: float, held: float,
            now: float) -> BudgetExhausted:
    """Why a reservation was refused: the budget is used up, or held by requests in flight."""
    return _refusal(scope, limit, settled, held, now)


def _refusal(scope: Scope, limit: float, settled: float, held: float,
             now: float) -> BudgetExhausted:
    if settled >= limit or held <= 0:
        return BudgetExhausted(
            f"the daily budget of {usd(limit)} for {_describe(scope)} is used up "
            f"({usd(settled)} spent today); it resets at 00:00 UTC",
            retry_after=seconds_to_reset(now))
    return BudgetExhausted(
        f"the daily budget of {usd(limit)} for {_describe(scope)} is taken by requests in "
        f"flight ({usd(settled)} spent, {usd(held)} held); retry when they finish",
        retry_after=1.0)


def _describe(scope: Scope) -> str:
    kind, ident = scope
    return {"user": f"user {ident!r}", "key": f"key {ident}", "day": "the gateway"}[kind]


def check_budgets(
    budgets: BudgetSpec, spend: SpentReader, user: str | None, key: str | None,
    now: float | None = None,
) -> str | None:
    """Raise when a budget is used up; the reason to step down when one runs low, else None.
    (Advisory, for the decision: `Spend.reserve` is what admits a request.)"""
    now = time.time() if now is None else now
    low: str | None = None
    for scope, limit in limits_of(budgets, user, key).items():
        left = limit - spend.spent(scope, now)
        if left <= 0:
            raise BudgetExhausted(
                f"the daily budget of {usd(limit)} for {_describe(scope)} is used up "
                f"({usd(limit - left)} spent today); it resets at 00:00 UTC",
                retry_after=seconds_to_reset(now))
        if low is None and left < budgets.step_down_below * limit:
            low = (f"the daily budget for {_describe(scope)} is running low "
                   f"({usd(left)} of {usd(limit)} left, under {budgets.step_down_below:.0%})")
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
    decision: Decision, request: ChatRequest, policy: Policy, spend: SpentReader,
    key_id: str | None, estimate: Estimate,
) -> Decision:
    """The decision the policy's budgets and the request's `metadata.max_cost_usd` allow."""
    if policy.budgets is not None:
        user = request.end_user
        low = check_budgets(policy.budgets, spend, user, key_id)
        if low is not None:
            decision = step_down(decision, policy, low, decision.signals.input_tokens)
    cap = max_cost(request)
    if cap is not None:
        decision = cap_chain(decision, cap, estimate)
    return decision
