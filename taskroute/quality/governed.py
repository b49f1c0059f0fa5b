"""A `Router` that serves the policy's A/B variants, logs its shadow policy's decisions and keeps
to its budgets — the same interface, so the gateway (or a library user) swaps it in.

    router = GovernedRouter.build(load_policy("policy.yaml"), store=SqliteStore("log.db"))

Which variant served a request, and what the shadow policy would have chosen, reach the log
through `QualityStore`, which wraps the router's store (the shadow decision goes to the store's
`add_shadow`): the call path that writes each entry knows nothing of experiments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from taskroute.decision import Decision
from taskroute.exceptions import TaskrouteError
from taskroute.policy.model import Policy, VariantSpec
from taskroute.quality import budgets as budget_rules
from taskroute.quality.budgets import SpendTracker
from taskroute.quality.variants import assign, assignment_unit
from taskroute.request import ChatRequest
from taskroute.router import Router

if TYPE_CHECKING:
    from taskroute.calling.streaming import RouteStream
    from taskroute.records import Api, RouteResult
    from taskroute.store.base import LogEntry, Store

log = logging.getLogger(__name__)
KeyOf = Callable[[], "str | None"]


@dataclass(frozen=True, slots=True)
class Served:
    """What the log needs to know about the request being served now."""

    variant: str | None
    shadow: Decision | None


_SERVED: ContextVar[Served | None] = ContextVar("taskroute_served", default=None)


class LimitedRouter(Router):
    """A router whose decisions keep to the policy's budgets and to `metadata.max_cost_usd`."""

    spend: SpendTracker
    key_of: KeyOf
    budgets_from: Policy

    def decide(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None
    ) -> Decision:
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        decision = super().decide(request, task=task)
        budgets = self.budgets_from.budgets
        if budgets is not None:
            user = request.user or request.meta("user_id")
            low = budget_rules.check_budgets(budgets, self.spend, user, self.key_of())
            if low is not None:
                decision = budget_rules.step_down(decision, self.policy, low,
                                                  decision.signals.input_tokens)
        cap = budget_rules.max_cost(request)
        if cap is not None:
            def estimate(model: str) -> float:
                return self._estimate_cost(model, decision.task, decision.signals, request)
            decision = budget_rules.cap_chain(decision, cap, estimate)
        return decision


class GovernedRouter(LimitedRouter):
    variants: tuple[tuple[VariantSpec, Router], ...]
    shadow_router: Router | None

    @classmethod
    def build(
        cls, policy: Policy, *, like: Router | None = None, store: Store | None = None,
        spend: SpendTracker | None = None, key_of: KeyOf | None = None, **kwargs: Any,
    ) -> GovernedRouter:
        """A router for `policy`, built with the parts of `like` (its store, providers and
        session history) when given: that is how a reload keeps what is running."""
        if like is not None:
            store = store or like.store
            kwargs.setdefault("providers", like._providers)
            kwargs.setdefault("history", like.history)
        if store is not None and not isinstance(store, QualityStore):
            store = QualityStore(store)
        spend = spend or (store.spend if isinstance(store, QualityStore) else SpendTracker())
        if isinstance(store, QualityStore):
            store.spend, store.key_of = spend, key_of or store.key_of
        router = cls(policy, store=store, **kwargs)
        keyed = key_of or (lambda: None)
        router._govern(policy, spend, keyed)
        router.variants = tuple(
            (spec, router if spec.policy is None else _limited(spec.policy, policy, spend, keyed,
                                                               store, kwargs))
            for spec in policy.variants
        )
        router.shadow_router = (
            Router(policy.shadow, classifier=kwargs.get("classifier", True))
            if policy.shadow is not None else None
        )
        return router

    def _govern(self, budgets_from: Policy, spend: SpendTracker, key_of: KeyOf) -> None:
        self.budgets_from, self.spend, self.key_of = budgets_from, spend, key_of

    def pick(self, request: ChatRequest) -> tuple[str | None, Router]:
        if not self.variants:
            return None, self
        spec = assign([v for v, _ in self.variants], assignment_unit(request))
        return spec.name, {v.name: r for v, r in self.variants}[spec.name]

    def _serve(self, request: ChatRequest, task: str | None) -> Router:
        variant, router = self.pick(request)
        shadow = None
        if self.shadow_router is not None:
            try:
                shadow = self.shadow_router.decide(request, task=task)
            except TaskrouteError as exc:  # the candidate's trouble never reaches the caller
                log.info("the shadow policy could not decide: %s", exc)
        _SERVED.set(Served(variant, shadow))
        return router

    async def complete(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
    ) -> RouteResult:
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        router = self._serve(request, task)
        if router is self:
            return await super().complete(request, task=task, request_id=request_id, api=api)
        return await router.complete(request, task=task, request_id=request_id, api=api)

    def stream(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
    ) -> RouteStream:
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        router = self._serve(request, task)
        if router is self:
            return super().stream(request, task=task, request_id=request_id, api=api)
        return router.stream(request, task=task, request_id=request_id, api=api)

    async def aclose(self) -> None:
        for _, router in self.variants:
            if router is not self:
                await router.aclose()
        await super().aclose()


def _limited(
    policy: Policy, budgets_from: Policy, spend: SpendTracker, key_of: KeyOf,
    store: Store | None, kwargs: dict[str, Any],
) -> LimitedRouter:
    router = LimitedRouter(policy, store=store, **kwargs)
    router.budgets_from, router.spend, router.key_of = budgets_from, spend, key_of
    return router


class QualityStore:
    """Wraps a store: stamps each entry with the variant that served it, counts its cost
    against the budgets and logs the shadow policy's decision for it."""

    def __init__(self, inner: Store, *, spend: SpendTracker | None = None,
                 key_of: KeyOf | None = None) -> None:
        self.inner = inner
        self.spend = spend or SpendTracker()
        self.key_of: KeyOf = key_of or (lambda: None)

    def add(self, entry: LogEntry) -> None:
        served = _SERVED.get()
        if served is not None and served.variant is not None and entry.variant is None:
            entry = replace(entry, variant=served.variant)
        self.spend.add(entry.record.total_cost_usd, user=entry.user,
                       key=entry.api_key_id or self.key_of())
        if served is not None and served.shadow is not None:
            self.inner.add_shadow(entry.record.request_id, served.shadow)
        self.inner.add(entry)

    def add_shadow(self, request_id: str, decision: Decision) -> None:
        self.inner.add_shadow(request_id, decision)

    async def flush(self) -> None:
        await self.inner.flush()

    async def aclose(self) -> None:
        await self.inner.aclose()
