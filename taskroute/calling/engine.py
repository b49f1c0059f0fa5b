"""`CallEngine`: what `Router.complete` and `Router.stream` delegate to. It owns the providers
(built from the policy on first use), each deployment's circuit breaker and first-token
timings, and the gates; it runs a decided request down the layers —

    race (when the task asks for one) → escalate along the chain → one model's deployments
    (failover, hedging) → retries → one call

— and finishes every request the same way (`finish`): its route recorded, escalations noted in
the session's history, its cost counted against the budgets, the entry (and the shadow policy's
decision) logged to the store, its trace span ended, and a failure's exception given the route
in `exc.record`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from taskroute.calling import chain as chain_layer
from taskroute.calling import deadline, hold, logprobs, rescue
from taskroute.calling import race as race_layer
from taskroute.calling.assemble import response_chunks
from taskroute.calling.attempt import Call
from taskroute.calling.breaker import Breakers, TripHistory
from taskroute.calling.context import Answer, CallContext, describe_error
from taskroute.calling.deadline import Deadline
from taskroute.calling.failover import call_model
from taskroute.calling.hedge import FirstTokenTimes
from taskroute.calling.once import (
    STREAM_HELD,
    STREAM_WHOLE,
    Opened,
    Wiring,
    close_quietly,
    complete_once,
    open_stream,
)
from taskroute.calling.once import read_whole as read_whole_once
from taskroute.calling.retry import RetryPolicy
from taskroute.calling.streaming import Admit, RouteStream, StreamStart
from taskroute.decision import Decision
from taskroute.exceptions import TaskrouteError
from taskroute.gates.base import Gate, GateEnv
from taskroute.gates.judge import JudgeGate
from taskroute.gates.registry import GateRegistry
from taskroute.policy.model import Policy, RaceSpec
from taskroute.providers.base import Provider, Timeouts
from taskroute.quality.budgets import Hold, Spend
from taskroute.records import (
    CLIENT_CLOSED,
    CLIENT_CLOSED_STATUS,
    AttemptRole,
    RequestContext,
    RouteRecord,
    RouteResult,
)
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, new_id
from taskroute.shared.base import BreakerBoard, SharedSpend
from taskroute.store.base import LogEntry, Store
from taskroute.tracing.base import RequestSpan, Tracing
from taskroute.tracing.judging import JUDGING
from taskroute.tracing.propagation import PassThrough


class _Called(Protocol):
    call: Call


T = TypeVar("T", bound=_Called)
# One call of one deployment: (ctx, wiring, model, deployment, role) → what it got.
OnceCall = Callable[[CallContext, Wiring, str, str, AttemptRole], Awaitable[T]]
HEDGE_LOST = "cancelled: lost the hedge (the other hedged call answered first)"


class CallEngine:
    def __init__(
        self, policy: Policy, *, gates: GateRegistry | None = None,
        providers: Mapping[str, Provider] | None = None, store: Store | None = None,
        on_escalation: Callable[[str], None] | None = None,
        spend: Spend | SharedSpend | None = None, board: BreakerBoard | None = None,
        trips: TripHistory | None = None, rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None, tracing: Tracing | None = None,
    ) -> None:
        self.policy = policy
        c = policy.calling
        # Providers built here are closed here; providers handed in stay their giver's.
        self._owns_providers = providers is None
        if providers is None:
            from taskroute.providers.registry import build_providers

            providers = build_providers(policy)
        self.wiring = Wiring(
            providers=providers,
            timeouts=Timeouts(c.connect_timeout_s, c.first_token_timeout_s, c.total_timeout_s),
            breakers=Breakers(c.breaker_failures, c.breaker_cooldown_s, board=board,
                              trips=trips),
            first_tokens=FirstTokenTimes(quantile=c.hedge_quantile,
                                         min_samples=c.hedge_min_samples),
        )
        self.retry = RetryPolicy(c.retries, c.backoff_s, c.backoff_max_s,
                                 rng or random.Random(), sleep or asyncio.sleep)
        self.store = store
        self.spend = spend
        self.tracing = tracing
        self._on_escalation = on_escalation
        self._registry = gates or GateRegistry()
        self._gates: dict[tuple[str, str], tuple[Gate, ...]] = {}

    # -- the two entry points -------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, decision: Decision, origin: RequestContext | None = None,
        *, hold: Hold | None = None, logged: bool = True,
    ) -> RouteResult:
        """`hold`: the budget reservation admitting the request; `finish` settles it.
        `logged=False`: a part of something logged whole (an agent run's step, `log` it)."""
        ctx, record = self._begin(request, decision, origin or RequestContext(), hold)
        t0 = time.perf_counter()
        try:
            answer, winner = await self._answer(ctx)
        except (TaskrouteError, asyncio.CancelledError) as exc:
            record.latency_s = round(time.perf_counter() - t0, 6)
            record.status, record.error = "error", (
                CLIENT_CLOSED if isinstance(exc, asyncio.CancelledError) else describe_error(exc))
            self.finish(ctx, record, None, exc, logged=logged)
            raise
        record.latency_s = round(time.perf_counter() - t0, 6)
        record.answered(answer.model, answer.deployment)
        record.race_winner = winner
        if answer.first_token_s is not None:
            record.first_token_s = round(
                answer.started_at - record.started_at + answer.first_token_s, 6
            )
        self.finish(ctx, record, answer.response.text, None, logged=logged)
        return RouteResult(logprobs.for_caller(answer.response, request), record)

    def stream(
        self, request: ChatRequest, decision: Decision, origin: RequestContext | None = None,
        *, hold: Hold | None = None, admit: Admit | None = None,
    ) -> RouteStream:
        """`admit`: the reservation to await when the stream starts, instead of `hold`."""
        ctx, record = self._begin(request, decision, origin or RequestContext(), hold)
        return RouteStream(self, ctx, record, admit=admit)

    def _begin(
        self, request: ChatRequest, decision: Decision, origin: RequestContext,
        hold: Hold | None,
    ) -> tuple[CallContext, RouteRecord]:
        span = self.request_span(request, decision, origin,
                                 racing=self._race(decision) is not None)
        ctx = CallContext(request, decision, self.policy, origin=origin, hold=hold,
                          deadline=self._deadline(request, decision, origin), span=span)
        if logprobs.needed(self._race(decision), self.gates_for(decision)):
            ctx.upstream = logprobs.upstream_request(request)
        record = RouteRecord(origin.request_id or new_id("req"), decision,
                             attempts=ctx.attempts, started_at=time.time())
        return ctx, record

    def request_span(
        self, request: ChatRequest, decision: Decision, origin: RequestContext, *,
        racing: bool = False, operation: str = "chat",
    ) -> RequestSpan | None:
        """The request's span when tracing is on; off, the client's trace context handed on
        (`PassThrough`), or None (nothing to do)."""
        if self.tracing is not None:
            return self.tracing.request(request, decision, origin, policy=self.policy,
                                        racing=racing, operation=operation)
        if origin.traceparent is not None:
            return PassThrough(origin.traceparent, origin.tracestate)
        return None

    def _deadline(
        self, request: ChatRequest, decision: Decision, origin: RequestContext
    ) -> Deadline | None:
        """The shortest of the policy's (or the task's) deadline and the caller's."""
        given = request.meta(deadline.METADATA_KEY)
        seconds = deadline.shortest(
            self.policy.deadline_for(decision.task), origin.deadline_s,
            None if given is None else deadline.parse_seconds(given, "metadata.deadline_s"))
        return None if seconds is None else Deadline.starting_now(seconds)

    # -- the layers -----------------------------------------------------------------------------

    async def _answer(self, ctx: CallContext) -> tuple[Answer, str | None]:
        gates = self.gates_for(ctx.decision)
        ask = self._asker(ctx, complete_once, "complete")
        spec = self._race(ctx.decision)
        models = ctx.decision.chain
        if spec is not None:
            outcome = await race_layer.race(ctx, spec, ask, gates, self._race_judge(spec))
            if outcome.answer is not None:
                return outcome.answer, outcome.winner
            models = tuple(m for m in models if m not in (ctx.decision.model, spec.against))
            if not models:
                raise chain_layer.exhausted(ctx.attempts, (ctx.decision.model, spec.against))
            answer = await chain_layer.escalate(
                ctx, models, ask, chain_layer.gated(ctx, gates), first_role="escalation"
            )
            return answer, None
        return await chain_layer.escalate(ctx, models, ask, chain_layer.gated(ctx, gates)), None

    async def start_stream(self, ctx: CallContext) -> StreamStart:
        """The first output of a streamed request (see `RouteStream`)."""
        decision = ctx.decision
        task = self.policy.tasks.get(decision.task)
        request = ctx.request
        if self._race(decision) is not None:
            answer, winner = await self._answer(ctx)
            replay = response_chunks(logprobs.for_caller(answer.response, request))
            return StreamStart(replay, None, answer.model, winner,
                               deployment=answer.deployment)
        # A JSON answer is of no use until it is whole, so reading it whole first costs its
        # caller nothing and lets the gates that judge it (valid JSON, schema) escalate.
        if (task is not None and task.buffer_stream) or request.format_kind != "text":
            ask = self._asker(ctx, read_whole_once, STREAM_WHOLE)
            gated = chain_layer.gated(ctx, self.gates_for(decision))
            answer = await chain_layer.escalate(ctx, decision.chain, ask, gated)
            replay = logprobs.chunks_for_caller(answer.chunks or (), request)
            return StreamStart(replay, None, answer.model, deployment=answer.deployment)
        ctx.upstream = None  # a live stream goes out as it comes, but for its held opening
        gates = self.gates_for(decision)
        opening = hold.opening_gates(gates)
        held = hold.hold_for(ctx, opening)
        once: OnceCall[Opened] = open_stream if held is None else hold.holding(held, opening)
        accept: Callable[[Opened], Awaitable[bool]] = (
            chain_layer.accept_any if held is None else hold.judged_opening(ctx, gates, opening))
        kind = "stream" if held is None else STREAM_HELD
        opened = await chain_layer.escalate(ctx, decision.chain,
                                            self._asker(ctx, once, kind), accept)
        return StreamStart(list(opened.held), opened, opened.model,
                           deployment=opened.deployment)

    async def rescue_stream(
        self, ctx: CallContext, broken: str, partial: str, *, rescues: int = 0, spent: int = 0
    ) -> Opened:
        """A stream continuing `partial`, the answer `broken` (a policy model) was streaming
        when it broke: the models after it in the chain, each through every layer (retries,
        failover, breakers) as any call. `rescues`: how often this stream was rescued;
        `spent`: the output tokens the answer used so far."""
        models = rescue.rescuers(ctx.decision.chain, broken, rescues=rescues)
        if not models:
            raise chain_layer.exhausted(ctx.attempts, (broken,))
        ask = self._asker(ctx, rescue.continuing(partial, spent=spent), "stream")
        return await chain_layer.escalate(ctx, models, ask, chain_layer.accept_any,
                                          first_role="rescue")

    def _asker(self, ctx: CallContext, once: OnceCall[T], kind: str) -> chain_layer.Ask[T]:
        """(model, role) → its answer through every layer below the chain, whether the
        answer is read whole (`complete_once`, `read_whole`) or opened live (`open_stream`):
        the complete and stream paths share this wiring."""

        async def discard(lost: T) -> None:  # a hedge partner that finished second
            await close_quietly(getattr(lost, "rest", None))
            lost.call.answered("cancelled", error=HEDGE_LOST)

        async def ask(model: str, role: AttemptRole) -> T:
            return await call_model(
                ctx, self.wiring, model, role,
                lambda deployment, r: once(ctx, self.wiring, model, deployment, r),
                self.retry, hedge_kind=kind if self.policy.calling.hedge else None,
                discard=discard,
            )

        return ask

    def _race(self, decision: Decision) -> RaceSpec | None:
        task = self.policy.tasks.get(decision.task)
        spec = task.race if task is not None else None
        if spec is None or not decision.routed or spec.against == decision.model:
            return None
        return spec

    def _race_judge(self, spec: RaceSpec) -> Gate | None:
        """The gate calling a race's judge model: every score counts (min score 1), the race
        reads its confidence."""
        if spec.judge is None:
            return None
        return JudgeGate(spec.judge, 1.0, self.call_for_gate)

    def gates_for(self, decision: Decision) -> tuple[Gate, ...]:
        key = (decision.task, decision.tier)
        gates = self._gates.get(key)
        if gates is None:
            env = GateEnv(self.policy, call_model=self.call_for_gate)
            gates = self._gates[key] = self._registry.build_for(
                self.policy, decision.task, decision.tier, env
            )
        return gates

    async def call_for_gate(self, model: str, request: ChatRequest) -> tuple[ChatResponse, float]:
        """One model call on a gate's behalf (the judge): failover and retries, no gates. When
        the call whose answer the gate grades is traced, this one is a judge span under it
        (`taskroute.tracing.judging`), ended with the gate's verdict."""
        decision = _side_decision(model, request, self.policy)
        judging = JUDGING.get()
        span = None if judging is None else judging.open(request, decision)
        ctx = CallContext(request, decision, self.policy, span=span)
        answer: Answer | None = None
        error: BaseException | None = None
        try:
            answer = await self._asker(ctx, complete_once, "complete")(model, "first")
            answer.call.answered("ok")
        except BaseException as exc:
            error = exc
            raise
        finally:
            ctx.settle()
            if judging is not None and span is not None:
                text = (answer.response.text if answer is not None and self.policy.log_content
                        else None)
                judging.called(span, _side_record(decision, ctx, answer, error), answer=text,
                               error=error)
        return answer.response, sum(a.cost_usd for a in ctx.attempts)

    # -- finishing ------------------------------------------------------------------------------

    def finish(
        self, ctx: CallContext, record: RouteRecord, answer: str | None,
        error: BaseException | None, *, http_status: int | None = None, logged: bool = True,
    ) -> None:
        """The one way every request ends, answered or not. Its logged status is what the
        client got: the error's (a cancellation is the client hanging up, 499), or
        `http_status` when the response had started before the error (a stream's 200)."""
        ctx.settle()  # every call no layer ended (an answer never used) is recorded now
        if ctx.confidence is not None:
            record.race_confidence = round(ctx.confidence.value, 6)
            record.confidence_source = ctx.confidence.source
        request, origin = ctx.request, ctx.origin
        if isinstance(error, TaskrouteError):
            error.record = record
        if ctx.span is not None:
            ctx.span.end(record, answer=answer if self.policy.log_content else None, error=error)
        session = request.meta("session_id")
        if record.escalated and session and self._on_escalation is not None:
            self._on_escalation(session)
        user = request.end_user
        if self.spend is not None:
            self.spend.settle(ctx.hold, record.total_cost_usd, user=user, key=origin.key_id)
            ctx.hold = None
        if logged:
            self.log(record, request, origin, answer, error, http_status=http_status)

    def log(
        self, record: RouteRecord, request: ChatRequest, origin: RequestContext,
        answer: str | None, error: BaseException | None, *, http_status: int | None = None,
    ) -> None:
        """The request's entry (and the shadow policy's decision) added to the store."""
        if self.store is None:
            return
        session = request.meta("session_id")
        user = request.end_user
        log_content = self.policy.log_content
        self.store.add(LogEntry(
            record=record, api=origin.api,
            http_status=http_status or (
                200 if error is None
                else int(getattr(error, "status_code", CLIENT_CLOSED_STATUS))),
            user=user, session_id=session, api_key_id=origin.key_id, variant=origin.variant,
            prompt=request.all_text if log_content else None,
            answer=answer if log_content else None,
        ))
        if origin.shadow is not None:
            self.store.add_shadow(record.request_id, origin.shadow, served=record)

    async def aclose(self) -> None:
        if self._owns_providers:
            for provider in self.wiring.providers.values():
                await provider.aclose()
        if self.store is not None:
            await self.store.flush()


def _side_record(decision: Decision, ctx: CallContext, answer: Answer | None,
                 error: BaseException | None) -> RouteRecord:
    """A call made on a gate's behalf, as a request's record (for its span)."""
    record = RouteRecord("", decision, attempts=ctx.attempts)
    if answer is not None:
        record.answered(answer.model, answer.deployment)
    elif error is not None:
        record.status, record.error = "error", (
            "cancelled" if isinstance(error, asyncio.CancelledError) else describe_error(error))
    return record


def _side_decision(model: str, request: ChatRequest, policy: Policy) -> Decision:
    """The decision for a call made on a gate's behalf: that one model, routing bypassed."""
    from taskroute.signals import measure

    return Decision(task="judge", task_source="caller", task_confidence=None,
                    signals=measure(request), tier=policy.models[model].tier, model=model,
                    chain=(model,), estimated_cost_usd=0.0, reasons=(), policy=policy.name,
                    routed=False)
