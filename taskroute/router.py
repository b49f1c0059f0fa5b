"""The front door: `Router.decide(request)` picks a task class, a tier and a model, and says why.

`Router` is the one place routing is composed. Whoever builds it decides what it contains — the
policy, the classifier, gates, providers, the store, the session history, the spend the budgets
are kept against — and everything that serves requests (the library, the CLI, the gateway)
serves the router it is handed: the same request gets the same decision everywhere, budgets and
`metadata.max_cost_usd` included. `with_policy()` builds a router for another policy from the
same parts (a reload, an A/B variant); `taskroute.experiment` wraps one router per variant.

Deciding is pure and fast: no I/O, no model calls, the same answer for the same request,
session history and spend. With state shared by replicas (`shared`, e.g. Redis), what deciding
reads of it arrives fetched beforehand in `context.snapshot` (`taskroute.shared`), and
admission against the budgets is the shared counters' atomic reserve. Calling models
(`complete`, `stream`) builds on it in `taskroute.calling`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from taskroute.calling.breaker import BreakerState, TripHistory
from taskroute.classify.rules import TASK_MODEL_PREFIX, choose_task
from taskroute.decision import Decision, TaskSource
from taskroute.exceptions import (
    ConfigError,
    PolicyError,
    UnknownModel,
)
from taskroute.policy.loader import load_default_policy, load_policy
from taskroute.policy.model import Policy
from taskroute.quality import budgets
from taskroute.quality.budgets import Hold, Spend, SpendTracker
from taskroute.records import Api, RequestContext, SharedSnapshot
from taskroute.request import ChatRequest
from taskroute.session import InMemorySessionHistory, SessionHistory
from taskroute.signals import Signals, measure
from taskroute.store.base import TripLog
from taskroute.tiers import choose_tier, estimate_cost, fit_context, output_budget

if TYPE_CHECKING:
    from taskroute.agent.loop import AgentResult
    from taskroute.calling.engine import CallEngine
    from taskroute.calling.streaming import RouteStream
    from taskroute.calling.sync import LoopThread
    from taskroute.classify.base import Classifier
    from taskroute.gates.base import Gate, GateFactory
    from taskroute.learned.model import LearnedRouter
    from taskroute.providers.base import Provider
    from taskroute.records import Api, RouteRecord, RouteResult
    from taskroute.response import ChatResponse
    from taskroute.shared.base import SharedState
    from taskroute.store.base import Store
    from taskroute.tools.registry import ToolsLike
    from taskroute.tracing.base import Tracing

T = TypeVar("T")
FileKey = tuple[str, int, int]   # path, mtime (ns), size
ROUTING_MODEL_NAMES = frozenset({"", "auto", "taskroute", "taskroute/auto"})


class Router:
    """Routes requests by a policy. Build one with `Router.default()` or `Router.from_file()`."""

    def __init__(
        self,
        policy: Policy,
        *,
        classifier: Classifier | bool | None = True,
        history: SessionHistory | None = None,
        gates: Mapping[str, GateFactory | Gate] | None = None,
        store: Store | None = None,
        providers: Mapping[str, Provider] | None = None,
        spend: Spend | None = None,
        shared: SharedState | None = None,
        tracing: Tracing | None = None,
        trips: TripHistory | None = None,
        _reuse: Mapping[FileKey, LearnedRouter] | None = None,
    ) -> None:
        """`classifier=True` uses the policy's (by default the bundled one), `False` or `None`
        turns it off, or pass any object with `predict(text) -> Prediction`.

        `gates` adds your own gates by name (a factory `(settings, GateEnv) -> Gate`, or a
        gate); every gate the policy names is checked here. `store` logs every routed request.
        `providers` replaces the ones built from the policy (by provider name); they stay
        yours to close. `spend` is where the policy's budgets are kept (in memory unless
        given: pass a shared one to keep one set of books across routers). `shared` is state
        shared by replicas (`taskroute.shared`, e.g. `RedisState`): rate limits, budgets,
        session history, open breakers and reloads then hold across every process using it
        (build it on `history` and `spend`: they are its per-process fallback). `tracing`
        traces every request and its attempts (`taskroute.tracing`; None: off). `trips` keeps
        the circuit breakers' recent trips (a new one unless given, kept in `store` too when
        the store is a `TripLog`; routers made by `with_policy` share it, so it outlives a
        reload; `await router.trips.load()` reads back the log's)."""
        from taskroute.gates.registry import GateRegistry

        self.policy = policy
        self._gates_given = gates
        self._classifier_given = classifier
        self._gate_registry = GateRegistry(gates)
        self._gate_registry.check_policy(policy)
        self.store = store
        self._providers = providers
        self._engine: CallEngine | None = None
        self.history: SessionHistory = history or InMemorySessionHistory()
        self.spend: Spend = spend if spend is not None else SpendTracker()
        self.shared = shared
        self.tracing = tracing
        if trips is None:
            trips = TripHistory(log=store if isinstance(store, TripLog) else None)
            if shared is not None:  # once per history: other replicas' trips are news here
                shared.breakers.on_heard(trips.heard)
        self.trips = trips
        if classifier is True and not policy.classifier.enabled:
            classifier = None
        self._classifier: Classifier | None = None if classifier in (True, False) else (
            classifier  # type: ignore[assignment]
        )
        self._classifier_wanted = classifier is True
        self._bare_names = _bare_model_names(policy)
        self._learned_files: dict[FileKey, LearnedRouter] = {}
        self._learned_routers = _load_learned_routers(policy, self._learned_files, _reuse)
        self._sync: LoopThread | None = None  # complete_sync's loop, once used

    @classmethod
    def default(cls, **kwargs: Any) -> Router:
        return cls(load_default_policy(), **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Router:
        return cls(load_policy(path), **kwargs)

    def with_policy(self, policy: Policy) -> Router:
        """A router for `policy` made of this one's parts: the same classifier setting, gates,
        given providers, store, session history and spend (a reload keeps everything the
        caller put in; providers built from the old policy are built anew from the new).
        Learned-router files that have not changed since this router loaded them are shared,
        not read again."""
        return Router(
            policy, classifier=self._classifier_given, history=self.history,
            gates=self._gates_given, store=self.store, providers=self._providers,
            spend=self.spend, shared=self.shared, tracing=self.tracing, trips=self.trips,
            _reuse=self._learned_files,
        )

    def warm(self) -> Router:
        """Load what deciding would otherwise load on first use (the classifier), so a router
        built off the event loop serves its first request without blocking it. A classifier
        may read its weights lazily, so it is asked once too."""
        if self.classifier is not None:
            self.classifier.predict("warm up")
        return self

    @property
    def classifier(self) -> Classifier | None:
        if self._classifier is None and self._classifier_wanted:
            from taskroute.classify.registry import build_classifier

            self._classifier = build_classifier(self.policy)  # the policy's `classifier: use:`
        return self._classifier

    # -- deciding -------------------------------------------------------------------------------

    def decide(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        context: RequestContext | None = None, tier: str | None = None,
    ) -> Decision:
        """Choose the task class, tier and model for a request, within the policy's budgets
        and the request's `metadata.max_cost_usd`. `task` is the caller's own naming of the
        class (the gateway passes the X-Taskroute-Task header in `context.task`); the budgets
        per key read `context.key_id`. `tier` starts the request at that tier instead of its
        class's (the policy's `agent:` section pins a step so); adjust rules still apply."""
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        named_in = "its task argument (--task on the command line)"
        if context is not None:
            if not task and context.task and context.api != "library":
                named_in = "the X-Taskroute-Task header"
            task = task or context.task
        snapshot = context.snapshot if context is not None else None
        decision = self._route(request, task, named_in, snapshot, tier)
        decision = self._limit(decision, request, context.key_id if context else None, snapshot)
        label = self.policy.label_for(decision.task, decision.tier)  # the tier once limited
        return decision if label is None else replace(decision, label=label)

    def _limit(self, decision: Decision, request: ChatRequest, key_id: str | None,
               snapshot: SharedSnapshot | None = None) -> Decision:
        def estimate(model: str) -> float:
            return self._estimate(model, decision.task, decision.signals, request)

        spend: budgets.SpentReader = self.spend if snapshot is None else budgets.Known(
            snapshot.spent)
        limited = budgets.limit(decision, request, self.policy, spend, key_id, estimate)
        if limited.model != decision.model:
            limited = replace(limited, estimated_cost_usd=estimate(limited.model))
        return limited

    def _reserve(
        self, decision: Decision, request: ChatRequest, key_id: str | None
    ) -> Hold | None:
        """Admit a request against the budgets: hold what its whole chain may cost (every
        model it may call, at the estimate) until it settles to what it did cost."""
        spec = self.policy.budgets
        if spec is None:
            return None
        user = request.end_user
        return self.spend.reserve(self._worst(decision, request), user=user, key=key_id,
                                  limits=budgets.limits_of(spec, user, key_id))

    async def _admit(
        self, decision: Decision, request: ChatRequest, key_id: str | None
    ) -> Hold | None:
        """`_reserve` against the shared counters (one atomic round trip), when there are."""
        spec = self.policy.budgets
        if self.shared is None or spec is None:
            return self._reserve(decision, request, key_id)
        user = request.end_user
        return await self.shared.spend.reserve(
            self._worst(decision, request), user=user, key=key_id,
            limits=budgets.limits_of(spec, user, key_id),
            fail_closed=self.policy.shared_state_down == "fail closed")

    async def _prefetch(self, request: ChatRequest, key_id: str | None) -> SharedSnapshot:
        """What deciding reads of the shared state, for a caller that did not fetch it (the
        library; the gateway fetches it with the rate-limit token, `gateway/shared_step.py`)."""
        from taskroute.shared.base import Lookup

        assert self.shared is not None
        policy = self.policy
        session = request.meta("session_id")
        scopes = (tuple(budgets.limits_of(policy.budgets, request.end_user, key_id))
                  if policy.budgets is not None else ())
        fetched = await self.shared.prefetch(Lookup(
            session=session or None, window_s=policy.session_window_s, scopes=scopes,
            fail_closed=policy.shared_state_down == "fail closed"))
        return fetched.snapshot

    def _worst(self, decision: Decision, request: ChatRequest) -> float:
        return sum(self._estimate(m, decision.task, decision.signals, request)
                   for m in decision.chain)

    def _route(self, request: ChatRequest, task: str | None, named_in: str = "",
               snapshot: SharedSnapshot | None = None, tier: str | None = None) -> Decision:
        policy = self.policy
        reasons: list[str] = []
        session = request.meta("session_id")
        if not session:
            escalations = 0
        elif snapshot is not None:
            escalations = snapshot.escalations
        else:
            escalations = self.history.escalations(session, policy.session_window_s)
        signals = measure(request, user_tiers=policy.user_tiers,
                          session_escalations=escalations)
        if signals.user_tier is not None and signals.user_tier_rank < 0:
            reasons.append(
                f"User tier {signals.user_tier!r} is not in the policy's user tiers; "
                "treated as unranked."
            )
        pinned = self._pinned_model(request.model)
        if pinned is not None and policy.named_models == "routed":
            reasons.append(f"The caller named {request.model}; the policy routes a named model "
                           "by its task class all the same.")
            pinned = None
        task_name, source, confidence = choose_task(
            policy, lambda: self.classifier, request, signals, task, reasons, named_in)
        if pinned is not None:
            return self._pinned(pinned, task_name, source, confidence, signals, reasons, request)
        start: str | None
        if tier is not None:
            pick, start = None, policy.tier(tier).name
            reasons.append(f"The policy's agent section sends this step to the {tier} tier.")
        else:
            pick = self._learned_pick(task_name, request, reasons)
            start = policy.models[pick].tier if pick else None
        chosen = choose_tier(policy, task_name, signals, reasons, start=start)
        chain = policy.tier(chosen).chain
        if pick and chosen == start:
            chain = (pick, *(m for m in chain if m != pick))
        chain = fit_context(policy, chain, signals.input_tokens,
                            output_budget(policy, task_name, request), reasons)
        return Decision(
            task=task_name,
            task_source=source,
            task_confidence=confidence,
            signals=signals,
            tier=chosen,
            model=chain[0],
            chain=chain,
            estimated_cost_usd=self._estimate(chain[0], task_name, signals, request),
            reasons=tuple(reasons),
            policy=policy.name,
        )

    def _pinned_model(self, model: str) -> str | None:
        """The concrete model a caller named, None when the request asks to be routed."""
        if model in ROUTING_MODEL_NAMES or model.startswith(TASK_MODEL_PREFIX):
            return None
        if model in self.policy.models:
            return model
        if model in self._bare_names:
            return self._bare_names[model]
        if self.policy.aliases.get(model) in self.policy.models:  # not an embedding model's
            return self.policy.aliases[model]
        raise UnknownModel(model, [*self.policy.models, *self.policy.aliases, "auto",
                                   "taskroute/<task class>"])

    def _learned_pick(self, task: str, request: ChatRequest, reasons: list[str]) -> str | None:
        """The model a task's learned router picks, or None when the task has none."""
        learned = self._learned_routers.get(task)
        if learned is None:
            return None
        router, to_policy = learned
        name, probabilities = router.choose(
            request.last_user_text, list(to_policy), task=task,
            lam=self.policy.tasks[task].router.lam,  # type: ignore[union-attr]
            target=self.policy.tasks[task].router.target,  # type: ignore[union-attr]
        )
        odds = ", ".join(f"{to_policy[m]} {p:.0%}" for m, p in probabilities.items())
        reasons.append(
            f"The learned router picked {to_policy[name]} (predicted success: {odds})."
        )
        return to_policy[name]

    def _estimate(
        self, model: str, task: str, signals: Signals, request: ChatRequest
    ) -> float:
        return estimate_cost(self.policy, model, task, signals, request)

    def _pinned(
        self, model: str, task: str, source: TaskSource, confidence: float | None,
        signals: Signals, reasons: list[str], request: ChatRequest,
    ) -> Decision:
        spec = self.policy.models[model]
        named = request.model
        alias = f" ({named}, an alias)" if self.policy.aliases.get(named) == model else ""
        reasons.append(f"The caller named the model {model}{alias}; routing is bypassed.")
        fit_context(self.policy, (model,), signals.input_tokens,
                    output_budget(self.policy, task, request), reasons)
        return Decision(
            task=task, task_source=source, task_confidence=confidence, signals=signals,
            tier=spec.tier, model=model, chain=(model,),
            estimated_cost_usd=self._estimate(model, task, signals, request),
            reasons=tuple(reasons), policy=self.policy.name, routed=False,
        )

    # -- calling models (taskroute.calling does the work) -----------------------------------

    @property
    def engine(self) -> CallEngine:
        """The call path, built on first use: providers, breakers, gates."""
        if self._engine is None:
            from taskroute.calling.engine import CallEngine

            shared = self.shared
            self._engine = CallEngine(
                self.policy, gates=self._gate_registry, providers=self._providers,
                store=self.store, on_escalation=self.record_escalation,
                spend=self.spend if shared is None else shared.spend,
                board=None if shared is None else shared.breakers, tracing=self.tracing,
                trips=self.trips,
            )
        return self._engine

    def breaker_states(self) -> dict[str, BreakerState]:
        """Each deployment's breaker state (read only: none before the first call builds the
        engine)."""
        return {} if self._engine is None else self._engine.wiring.breakers.states()

    def _context(
        self, context: RequestContext | None, task: str | None, request_id: str | None,
        api: Api,
    ) -> RequestContext:
        if context is None:
            return RequestContext(request_id=request_id, api=api, task=task)
        if task is None and request_id is None:
            return context
        return context.with_(task=task or context.task,
                             request_id=request_id or context.request_id)

    async def complete(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteResult:
        """Decide, then call: escalating along the chain until an answer passes its gates.
        A failure raised from here carries the request's route in `exc.record`. The request's
        log entry is added, not necessarily durable, when this returns (fire and forget,
        batched); `await router.store.acknowledged()` waits until it is (what the gateway does
        before it acknowledges an answer: gateway/acknowledge.py; for SQLite it already is),
        `await router.store.flush()` until readers see it."""
        if self._sync is not None and not self._sync.owns_current_loop():
            import asyncio

            # the connections live on complete_sync()'s loop: run there, await here
            return await asyncio.wrap_future(self._sync.submit(self.complete(
                request, task=task, request_id=request_id, api=api, context=context)))
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        ctx = self._context(context, task, request_id, api)
        if self.shared is not None and ctx.snapshot is None:  # the gateway fetched it already
            ctx = ctx.with_(snapshot=await self._prefetch(request, ctx.key_id))
        decision = self.decide(request, context=ctx)
        hold = await self._admit(decision, request, ctx.key_id)
        return await self.engine.complete(request, decision, ctx, hold=hold)

    def stream(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None, api: Api = "library",
        context: RequestContext | None = None,
    ) -> RouteStream:
        """Decide now; `await stream.start()` (or iterating) calls the model."""
        if self._sync is not None:
            raise RuntimeError("this Router's connections live on complete_sync()'s loop; "
                               "call router.close() before streaming from an event loop")
        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        ctx = self._context(context, task, request_id, api)
        decision = self.decide(request, context=ctx)
        if self.shared is not None and self.policy.budgets is not None:
            # admitted by the shared counters when the stream starts (an awaited round trip)
            def admit() -> Awaitable[Hold | None]:
                return self._admit(decision, request, ctx.key_id)

            return self.engine.stream(request, decision, ctx, admit=admit)
        hold = self._reserve(decision, request, ctx.key_id)
        return self.engine.stream(request, decision, ctx, hold=hold)

    # -- agent runs (taskroute.agent does the work) ---------------------------------------------

    async def run(
        self, request: ChatRequest | Mapping[str, Any], *, tools: ToolsLike,
        task: str | None = None, request_id: str | None = None,
        context: RequestContext | None = None, max_steps: int | None = None,
        max_cost_usd: float | None = None, deadline_s: float | None = None,
    ) -> AgentResult:
        """An agent run: model steps and their tool calls (run at once) in turn until the
        model answers, each step routed on its own by the policy's `agent:` section (tool
        steps as the tool_use class, the answer as `task` or the request's own class). Logged
        as one request with its steps. Stops with `AgentLimitReached` at `max_steps`,
        `max_cost_usd` or `deadline_s` (each the policy's unless given)."""
        if self._sync is not None and not self._sync.owns_current_loop():
            import asyncio

            return await asyncio.wrap_future(self._sync.submit(self.run(
                request, tools=tools, task=task, request_id=request_id, context=context,
                max_steps=max_steps, max_cost_usd=max_cost_usd, deadline_s=deadline_s)))
        from taskroute.agent.limits import Limits
        from taskroute.agent.loop import run_agent
        from taskroute.tools import Tools

        if not isinstance(request, ChatRequest):
            request = ChatRequest.from_dict(request)
        ctx = self._context(context, task, request_id, "library")
        if self.shared is not None and ctx.snapshot is None:
            ctx = ctx.with_(snapshot=await self._prefetch(request, ctx.key_id))
        limits = Limits.of(self.policy.agent, max_steps=max_steps, max_cost_usd=max_cost_usd,
                           deadline_s=deadline_s)
        return await run_agent(self, request, Tools.of(tools), context=ctx, limits=limits)

    def run_sync(
        self, request: ChatRequest | Mapping[str, Any], *, tools: ToolsLike,
        task: str | None = None, request_id: str | None = None, max_steps: int | None = None,
        max_cost_usd: float | None = None, deadline_s: float | None = None,
    ) -> AgentResult:
        """`run` for code without an event loop, on `complete_sync`'s private loop (async
        tools run there; sync ones in worker threads)."""
        return self._on_sync_loop("run_sync", "await run()", self.run(
            request, tools=tools, task=task, request_id=request_id, max_steps=max_steps,
            max_cost_usd=max_cost_usd, deadline_s=deadline_s))

    async def complete_step(
        self, request: ChatRequest, decision: Decision, context: RequestContext
    ) -> RouteResult:
        """One step of an agent run: admitted against the budgets and called as `complete`
        calls (escalation, gates, retries), but not logged alone: the run is, with its steps
        (`log_run`)."""
        hold = await self._admit(decision, request, context.key_id)
        return await self.engine.complete(request, decision, context, hold=hold, logged=False)

    def log_run(self, record: RouteRecord, request: ChatRequest, context: RequestContext,
                answer: str | None, error: BaseException | None) -> None:
        """An agent run's one log entry."""
        self.engine.log(record, request, context, answer, error)

    async def judge_step(self, answer: ChatResponse, request: ChatRequest,
                         decision: Decision) -> bool:
        """Whether an agent step's answer passes the gates of `decision` (the finaliser's
        class and tier), so it may be the run's answer. A gate that calls a model (a judge)
        only runs on a call the engine makes and pays for: with one, False."""
        import inspect

        from taskroute.gates.runner import passed, run_gates

        gates = self.engine.gates_for(decision)
        if any(inspect.iscoroutinefunction(gate.check) for gate in gates):
            return False
        return passed(await run_gates(gates, answer, request))

    async def embed(
        self, body: Mapping[str, Any], *, context: RequestContext
    ) -> tuple[dict[str, Any], RouteRecord]:
        """An embeddings request passed to the policy's embedding model: never routed, but
        logged and priced (`taskroute.calling.embeddings`)."""
        from taskroute.calling.embeddings import embed

        return await embed(self.engine, body, context)

    def complete_sync(
        self, request: ChatRequest | Mapping[str, Any], *, task: str | None = None,
        request_id: str | None = None,
    ) -> RouteResult:
        """`complete` for code without an event loop. The calls run on one private loop thread
        for the Router's life, so they share connections and breaker state; `close()` ends it."""
        return self._on_sync_loop("complete_sync", "await complete()", self.complete(
            request, task=task, request_id=request_id))

    def _on_sync_loop(self, name: str, instead: str, work: Coroutine[Any, Any, T]) -> T:
        """`work` run on the private loop thread (started on first use)."""
        import asyncio
        import weakref

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            work.close()
            raise RuntimeError(f"{name}() was called inside an event loop; {instead}")
        if self._sync is None:
            from taskroute.calling.sync import LoopThread

            self._sync = LoopThread()
            weakref.finalize(self, self._sync.stop)
        try:
            return self._sync.run(work)
        finally:
            if self._engine is not None:  # built on that loop: closed there too
                self._sync.on_stop(self._engine.aclose)

    def close(self) -> None:
        """Close what `complete_sync` opened: connections, the store's last batch, its thread.
        (Code with an event loop uses `await aclose()`.)"""
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.stop()
            self._engine = None

    async def aclose(self) -> None:
        """Close the providers' connections and flush the store."""
        if self._sync is not None and not self._sync.owns_current_loop():
            import asyncio

            await asyncio.to_thread(self.close)
            return
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.aclose()

    def record_escalation(self, session_id: str | None) -> None:
        """Called by the call path when a session's request had to escalate."""
        if not session_id:
            return
        if self.shared is not None:  # the shared history; it keeps this process's too
            self.shared.sessions.record_escalation(session_id)
        else:
            self.history.record_escalation(session_id)


def _file_key(path: str) -> FileKey:
    """A file as it is now: a changed file (replaced, rewritten) gets another key."""
    try:
        stat = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, stat.st_mtime_ns, stat.st_size)


def _load_learned_routers(
    policy: Policy, loaded_files: dict[FileKey, LearnedRouter],
    reuse: Mapping[FileKey, LearnedRouter] | None = None,
) -> dict[str, tuple[LearnedRouter, dict[str, str]]]:
    """Each task's learned router with its model names mapped to the policy's model ids. Tasks
    naming the same file share one loaded router (memory, and warm caches at decide time), and
    so do routers rebuilt for a new policy while the file is unchanged (`reuse`); every file
    loaded is noted in `loaded_files`."""
    routers: dict[str, tuple[LearnedRouter, dict[str, str]]] = {}
    loaded: dict[str, LearnedRouter] = {}
    for task in policy.tasks.values():
        spec = task.router
        if spec is None:
            continue
        try:
            from taskroute.learned.model import LearnedRouter
        except ImportError as exc:
            raise ConfigError(
                f"task {task.name} uses a learned router, which needs numpy: "
                f"pip install 'taskroute[learned]' ({exc})"
            ) from None
        key = _file_key(spec.file)
        router = loaded.get(spec.file) or (reuse or {}).get(key)
        if router is None:
            try:
                router = LearnedRouter.load(spec.file)
            except ConfigError:  # trained with sentence embeddings: offline evaluation only
                raise PolicyError(
                    "this learned router was trained with sentence embeddings (--embedder), "
                    "which cost tens of milliseconds per prompt: too slow for decide's "
                    "sub-millisecond budget; train one without --embedder for live routing",
                    file=policy.source, key=f"tasks.{task.name}.router",
                ) from None
        loaded[spec.file] = loaded_files[key] = router
        to_policy = {
            name: spec.models.get(name, name) for name in router.models
            if spec.models.get(name, name) in policy.models
        }
        if not to_policy:
            raise PolicyError(
                f"none of the learned router's models ({', '.join(router.models)}) is a model "
                "of this policy; map them with 'models:'",
                file=policy.source, key=f"tasks.{task.name}.router",
            )
        routers[task.name] = (router, to_policy)
    return routers


def _bare_model_names(policy: Policy) -> dict[str, str]:
    """Upstream names (gpt-4.1-mini) that stand for exactly one model id of the policy."""
    counts: dict[str, list[str]] = {}
    for model_id, spec in policy.models.items():
        counts.setdefault(spec.upstream_name, []).append(model_id)
    return {name: ids[0] for name, ids in counts.items() if len(ids) == 1}
