"""What `/metrics` reads of the running gateway at each scrape: every deployment's circuit
breaker across the routers being served (an experiment's variants included), and the budgets'
headroom per scope. Reads only: no engine is built, nothing is changed."""

from __future__ import annotations

from taskroute.calling.breaker import BreakerState
from taskroute.experiment import Experiment, Serving
from taskroute.gateway.metrics import Headroom
from taskroute.gateway.serving import Current
from taskroute.quality.budgets import SpendTracker
from taskroute.router import Router

# A scrape lists at most this many user (and key) scopes, those with the least headroom first.
MAX_SCOPES = 50
_BADNESS: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


def routers_of(serving: Serving) -> list[Router]:
    """The routers being served: an experiment's every variant (and shadow), else the one."""
    if isinstance(serving, Experiment):
        return serving.routers()
    return [serving] if isinstance(serving, Router) else []


def worst_breaker_states(serving: Serving) -> dict[str, BreakerState]:
    """Each called deployment's breaker across the routers served; where routers (variants)
    disagree, the worst state."""
    found: dict[str, BreakerState] = {}
    for router in routers_of(serving):
        for deployment, state in router.breaker_states().items():
            if _BADNESS[state] >= _BADNESS[found.get(deployment, "closed")]:
                found[deployment] = state
    return found


def breaker_states(current: Current) -> dict[str, str]:
    """`worst_breaker_states` of the router served now, for the breaker gauge."""
    return dict(worst_breaker_states(current.router))


def budget_headroom(current: Current) -> Headroom:
    """(scope, id) → (limit, headroom) for the day's budget and for the users and keys that
    spent today, as this process's spend tracker has them."""
    serving = current.router
    spec = serving.policy.budgets
    spend = serving.spend
    if spec is None:
        return {}
    limits = {"day": spec.per_day_usd, "user": spec.per_user_usd, "key": spec.per_key_usd}
    scopes = [("day", "")]
    if isinstance(spend, SpendTracker):
        scopes += [s for s in spend.scopes() if s[0] != "day"]
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for scope in scopes:
        limit = limits.get(scope[0])
        if limit is not None:
            found[scope] = (limit, max(limit - spend.spent(scope), 0.0))
    kept = sorted((s for s in found if s[0] != "day"), key=lambda s: found[s][1])
    for kind in ("user", "key"):
        for scope in [s for s in kept if s[0] == kind][MAX_SCOPES:]:
            del found[scope]
    return found
