"""The agent loop: a model step, then the tool calls it made (all at once), then the next step,
until the model answers or a limit is reached — each step routed by its own class.

    plan       the first step: it picks the tools    → the policy's `agent: plan` (tool_use)
    execute    each step after tool results          → `agent: execute` (tool_use)
    finalise   the answer                            → `agent: finalise` (the request's class)

Which step writes the answer is the model's to say: a step that answers instead of calling
tools. That text is the answer when its model's tier is at least the finaliser's and the
finaliser's gates pass it; else it is a draft (paid for, not used) and the finaliser answers
from the same transcript, tools still on offer. Each step
goes through the engine as any request does (escalation, gates, retries, budgets); the run is
logged once, as one request with its steps (`RouteRecord.steps`, each attempt's `step`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import msgspec

from taskroute.agent.limits import Limits
from taskroute.decision import Decision
from taskroute.exceptions import AgentLimitReached, TaskrouteError
from taskroute.policy.model import Policy, StepRoute
from taskroute.records import (
    CLIENT_CLOSED,
    Attempt,
    RequestContext,
    RouteRecord,
    RouteResult,
    Step,
    StepKind,
    StepOutcome,
    ToolRun,
)
from taskroute.request import ChatRequest, Message
from taskroute.response import ChatResponse, new_id
from taskroute.tools.execute import ToolResult, run_tool_calls
from taskroute.tools.registry import Tools


class Steps(Protocol):
    """What a run needs of a router (`taskroute.router.Router` is one)."""

    policy: Policy

    def decide(self, request: ChatRequest, *, task: str | None = None,
               context: RequestContext | None = None, tier: str | None = None) -> Decision: ...

    async def complete_step(self, request: ChatRequest, decision: Decision,
                            context: RequestContext) -> RouteResult: ...

    def log_run(self, record: RouteRecord, request: ChatRequest, context: RequestContext,
                answer: str | None, error: BaseException | None) -> None: ...

    async def judge_step(self, answer: ChatResponse, request: ChatRequest,
                         decision: Decision) -> bool: ...


@dataclass(slots=True)
class AgentResult:
    """The run's answer, its record (one request, its steps, every attempt) and transcript."""

    response: ChatResponse
    record: RouteRecord
    messages: list[dict[str, Any]]   # the request's, each step's tool calls and results

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def steps(self) -> list[Step]:
        return self.record.steps


@dataclass(slots=True)
class _Run:
    request: ChatRequest
    context: RequestContext
    limits: Limits
    messages: list[Message]
    record: RouteRecord
    started: float = field(default_factory=time.perf_counter)

    @property
    def spent(self) -> float:
        return self.record.total_cost_usd

    def add_step(self, kind: StepKind, decision: Decision, outcome: StepOutcome,
                 route: RouteRecord | None, latency_s: float) -> None:
        index = len(self.record.steps) + 1
        attempts: list[Attempt] = route.attempts if route is not None else []
        self.record.attempts.extend(replace(a, step=index) for a in attempts)
        self.record.steps.append(Step(
            index=index, kind=kind, decision=decision, outcome=outcome,
            answered_by=route.answered_model if route is not None else None,
            attempts=len(attempts), cost_usd=route.total_cost_usd if route else 0.0,
            latency_s=round(latency_s, 6)))

    def add_tools(self, results: Sequence[ToolResult], seconds: float) -> None:
        """The last step's tool calls, once they have run."""
        self.record.steps[-1] = replace(
            self.record.steps[-1], tools_s=round(seconds, 6),
            tools=tuple(ToolRun(r.name, r.call_id, r.status, r.latency_s) for r in results))

    def transcript(self) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(m) for m in self.messages]


async def run_agent(
    steps: Steps, request: ChatRequest, tools: Tools, *, context: RequestContext,
    limits: Limits,
) -> AgentResult:
    """Run `request` with `tools` to an answer (see the module's docstring). `context.task`
    names the request's class (else it is decided from the request without its tools)."""
    offered = request.tools or tools.specs()
    # the request's class, from the user's words: offered tools would make it tool_use
    asked = msgspec.structs.replace(request, tools=None, tool_choice=None, stream=False)
    own = steps.decide(asked, task=context.task, context=context)
    run = _Run(request, context, limits, list(request.messages),
               RouteRecord(context.request_id or new_id("run"), own, started_at=time.time()))
    try:
        response = await _steps(steps, run, tools, offered, own.task)
    except BaseException as exc:
        _finish(steps, run, None, exc)
        raise
    _finish(steps, run, response, None)
    return AgentResult(response, run.record, run.transcript())


async def _steps(steps: Steps, run: _Run, tools: Tools, offered: list[dict[str, Any]],
                 own_task: str) -> ChatResponse:
    spec = steps.policy.agent
    routes = {"plan": spec.plan, "execute": spec.execute, "finalise": spec.finalise}
    kind: StepKind = "plan"
    while True:
        step_request = msgspec.structs.replace(
            run.request, messages=list(run.messages), tools=offered, stream=False,
            tool_choice=run.request.tool_choice if kind == "plan" else None)
        decision = _decide(steps, step_request, routes[kind], own_task, run.context)
        run.limits.check(len(run.record.steps) + 1, run.spent, decision.estimated_cost_usd)
        run.record.decision = decision
        result = await _call(steps, run, kind, step_request, decision)
        response, answered = result.response, result.record.answered_model
        calls = response.tool_calls
        if calls:
            message = response.choices[0].message
            run.messages.append(Message(role="assistant", content=message.content,
                                        tool_calls=calls,
                                        thinking_blocks=message.thinking_blocks or None))
            run.add_step(kind, decision, "tool calls", result.record, result.record.latency_s)
            began = time.perf_counter()
            results = await run_tool_calls(calls, tools, timeout_s=run.limits.tool_timeout(),
                                           concurrency=run.limits.parallel_tools)
            run.add_tools(results, time.perf_counter() - began)
            run.messages.extend(Message(role="tool", content=r.content, tool_call_id=r.call_id)
                                for r in results)
            kind = "execute"
            continue
        if kind != "finalise":
            finaliser = _decide(steps, step_request, spec.finalise, own_task, run.context)
            if _below(steps.policy, answered, finaliser.tier) or not await steps.judge_step(
                    response, step_request, finaliser):
                run.add_step(kind, decision, "draft", result.record, result.record.latency_s)
                kind = "finalise"
                continue
        run.add_step(kind, decision, "answer", result.record, result.record.latency_s)
        run.record.answered_by = result.record.answered_by
        run.record.stood_in_for = result.record.stood_in_for
        run.record.status = result.record.status
        return response


def _decide(steps: Steps, request: ChatRequest, route: StepRoute, own_task: str,
            context: RequestContext) -> Decision:
    """The step's decision: as its route's task class (when the policy has it), else as the
    request's own class; at its route's tier when the route pins one."""
    task = route.task if route.task in steps.policy.tasks else own_task
    return steps.decide(request, task=task, context=context.with_(task=None), tier=route.tier)


async def _call(steps: Steps, run: _Run, kind: StepKind, request: ChatRequest,
                decision: Decision) -> RouteResult:
    """One step through the engine, within the time the run has left; a failure is recorded
    as the step's (its attempts count) before it ends the run."""
    left = run.limits.left_s()
    context = run.context
    if left is not None:
        given = context.deadline_s
        context = context.with_(deadline_s=left if given is None else min(left, given))
    began = time.perf_counter()
    try:
        return await steps.complete_step(request, decision, context)
    except TaskrouteError as exc:
        record = exc.record if isinstance(exc.record, RouteRecord) else None
        run.add_step(kind, decision, "error", record, time.perf_counter() - began)
        if run.limits.out_of_time():
            raise run.limits.deadline_reached() from exc
        raise


def _below(policy: Policy, model: str | None, tier: str) -> bool:
    """Whether `model` (the step's answerer) is of a tier cheaper than `tier`."""
    spec = policy.models.get(model or "")
    return spec is not None and policy.tier_index(spec.tier) < policy.tier_index(tier)


def _finish(steps: Steps, run: _Run, response: ChatResponse | None,
            error: BaseException | None) -> None:
    record = run.record
    record.latency_s = round(time.perf_counter() - run.started, 6)
    if error is not None:
        record.status = "error"
        record.error = (CLIENT_CLOSED if isinstance(error, asyncio.CancelledError)
                        else f"{type(error).__name__}: {error}")
        if isinstance(error, TaskrouteError):
            error.record = record
        if isinstance(error, AgentLimitReached):
            error.messages = run.transcript()
    steps.log_run(record, run.request, run.context,
                  response.text if response is not None else None, error)
