"""A/B variants and shadow policies: a wrapper holding one `Router` per variant.

    router = Router.from_file("policy.yaml", store=SqliteStore("log.db"))
    served = compose(router)        # an Experiment when the policy has variants or a shadow

Each variant's router is built from the control's parts (`Router.with_policy`), so they share
the store, the session history and the spend, and every variant keeps to the control policy's
budgets. A request is assigned to a variant sticky by user (or session); the shadow policy
decides every request too, and its decision reaches the log beside the served one — both
carried in the request's explicit `RequestContext`, not in a side channel.

`Serving` is what the gateway serves: a `Router`, an `Experiment`, or anything of that shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from taskroute.decision import Decision
from taskroute.exceptions import TaskrouteError
from taskroute.policy.model import Policy, VariantSpec
from taskroute.quality.budgets import Spend
from taskroute.quality.variants import assign, assignment_unit
from taskroute.records import Api, RequestContext
from taskroute.request import ChatRequest
from taskroute.router import Router

if TYPE_CHECKING:
    from taskroute.calling.streaming import RouteStream
    from taskroute.records import RouteRecord, RouteResult
    from taskroute.shared.base import SharedState
    from taskroute.store.base import Store

log = logging.getLogger(__name__)


class Serving(Protocol):
    """What a front door (the gateway, the CLI) serves requests with."""

    @property
    def policy(self) -> Policy: ...

    @property
    def store(self) -> Store | None: ...

    @property
    def spend(self) -> Spend:
        """Where the budgets' spend is kept."""
        ...

    @property
    def shared(self) -> SharedState | None:
        """State shared with other replicas (None: this process's memory only)."""
        ...

    def decide(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        context: RequestContext | None = None,
    ) -> Decision: ...

    async def complete(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteResult: ...

    def stream(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteStream: ...

    async def embed(
        self, body: Mapping[str, Any], *, context: RequestContext
    ) -> tuple[dict[str, Any], RouteRecord]:
        """An embeddings request passed to the policy's embedding model (never routed), logged
        and priced: the provider's answer and the record."""
        ...

    def with_policy(self, policy: Policy) -> Serving:
        """The same parts serving another policy (what a reload swaps in)."""
        ...

    def warm(self) -> Serving: ...

    async def aclose(self) -> None: ...


def compose(router: Router) -> Router | Experiment:
    """`router` wrapped in an `Experiment` when its policy has variants or a shadow, else
    `router` itself."""
    if router.policy.variants or router.policy.shadow is not None:
        return Experiment.from_router(router)
    return router


def reloaded(serving: Serving, policy: Policy) -> Serving:
    """What serves `policy` with `serving`'s parts: a router (or an experiment, when the new
    policy has variants) built by `with_policy`."""
    if isinstance(serving, Router):
        return compose(serving.with_policy(policy))
    return serving.with_policy(policy)


class Experiment:
    """Serves each request by its variant's router and logs the shadow policy's decision."""

    def __init__(
        self, control: Router, variants: Sequence[tuple[VariantSpec, Router]] = (),
        shadow: Router | None = None,
    ) -> None:
        self.control = control
        self.variants = tuple(variants)
        self.shadow = shadow
        self._by_name = {spec.name: router for spec, router in self.variants}

    @classmethod
    def from_router(cls, control: Router) -> Experiment:
        """The control's policy's variants and shadow, each a router of the control's parts."""
        policy = control.policy
        variants = [
            (spec, control if spec.policy is None
             else control.with_policy(replace(spec.policy, budgets=policy.budgets)))
            for spec in policy.variants
        ]
        shadow = control.with_policy(policy.shadow) if policy.shadow is not None else None
        return cls(control, variants, shadow)

    @property
    def policy(self) -> Policy:
        return self.control.policy

    @property
    def store(self) -> Store | None:
        return self.control.store

    @property
    def spend(self) -> Spend:
        return self.control.spend

    @property
    def shared(self) -> SharedState | None:
        return self.control.shared

    def routers(self) -> list[Router]:
        """Every distinct router this holds, the control first."""
        seen: list[Router] = [self.control]
        for router in [r for _, r in self.variants] + ([self.shadow] if self.shadow else []):
            if all(router is not s for s in seen):
                seen.append(router)
        return seen

    def pick(self, request: ChatRequest) -> tuple[str | None, Router]:
        """The variant a request is assigned to (sticky per user or session) and its router."""
        if not self.variants:
            return None, self.control
        spec = assign([v for v, _ in self.variants], assignment_unit(request))
        return spec.name, self._by_name[spec.name]

    def _serve(
        self, request: ChatRequest, task: str | None, context: RequestContext | None,
        request_id: str | None = None, api: Api = "library",
    ) -> tuple[Router, RequestContext]:
        context = context or RequestContext(request_id=request_id, api=api)
        context = context.with_(task=task or context.task,
                                request_id=request_id or context.request_id)
        variant, router = self.pick(request)
        shadow = None
        if self.shadow is not None:
            try:
                shadow = self.shadow.decide(request, context=context)
            except TaskrouteError as exc:  # the candidate's trouble never reaches the caller
                log.info("the shadow policy could not decide: %s", exc)
        return router, context.with_(variant=variant, shadow=shadow)

    def decide(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        context: RequestContext | None = None,
    ) -> Decision:
        """What the request's variant decides (the shadow is not consulted)."""
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        _, router = self.pick(request)
        return router.decide(request, task=task, context=context)

    async def complete(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteResult:
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        router, context = self._serve(request, task, context, request_id, api)
        return await router.complete(request, context=context)

    def stream(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteStream:
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        router, context = self._serve(request, task, context, request_id, api)
        return router.stream(request, context=context)

    async def embed(
        self, body: Mapping[str, Any], *, context: RequestContext
    ) -> tuple[dict[str, Any], RouteRecord]:
        return await self.control.embed(body, context=context)  # no variant: nothing routed

    def with_policy(self, policy: Policy) -> Router | Experiment:
        return compose(self.control.with_policy(policy))

    def warm(self) -> Experiment:
        for router in self.routers():
            router.warm()
        return self

    async def aclose(self) -> None:
        for router in reversed(self.routers()):
            await router.aclose()
