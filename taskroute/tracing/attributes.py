"""A request's, an attempt's and a judge's span attributes: OpenTelemetry's GenAI semantic
conventions (`gen_ai.*`) and taskroute's own (`taskroute.*`). Plain dicts, no OpenTelemetry
here.

Never a key or a header; the prompt and the answer only when the policy's `log content`
allows (as `gen_ai.input.messages` / `gen_ai.output.messages`, JSON), and never an embeddings
request's input or vectors; of a judge's verdict, whether it passed and its confidence, not its
reason (which may quote the judge's answer)."""

from __future__ import annotations

from typing import Any

import msgspec

from taskroute.decision import Decision
from taskroute.records import Attempt, AttemptRole, GateVerdict, RequestContext, RouteRecord
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

Attributes = dict[str, Any]

# provider kind → the semantic conventions' `gen_ai.provider.name`
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
                  "bedrock": "aws.bedrock", "azure": "azure.ai.openai"}
OPERATION = "chat"
EMBEDDINGS = "embeddings"  # the semantic conventions' operation name for an embeddings call
JUDGE = "judge"            # a judge span's name: `judge <judge model>`


def provider_name(kind: str) -> str:
    return PROVIDER_NAMES.get(kind, kind)


def request_start(request: ChatRequest, decision: Decision, origin: RequestContext,
                  operation: str = OPERATION) -> Attributes:
    """What is known when a request starts: what was asked, and the decision."""
    attrs: Attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": request.model,
        "taskroute.request_id": origin.request_id or "",
        "taskroute.api": origin.api,
        "taskroute.policy": decision.policy,
        "taskroute.task_class": decision.task,
        "taskroute.task_source": decision.task_source,
        "taskroute.tier": decision.tier,
        "taskroute.model": decision.model,
        "taskroute.chain": list(decision.chain),
        "taskroute.routed": decision.routed,
        "taskroute.reasons": list(decision.reasons),
        "taskroute.estimated_cost_usd": decision.estimated_cost_usd,
    }
    if decision.task_confidence is not None:
        attrs["taskroute.task_confidence"] = decision.task_confidence
    if request.max_tokens is not None:
        attrs["gen_ai.request.max_tokens"] = request.max_tokens
    if request.temperature is not None:
        attrs["gen_ai.request.temperature"] = request.temperature
    if request.stream:
        attrs["taskroute.stream"] = True
    if origin.variant:
        attrs["taskroute.variant"] = origin.variant
    return attrs


def request_end(record: RouteRecord, request: ChatRequest, answer: str | None,
                log_content: bool) -> Attributes:
    """What the request came to: who answered, its tokens and cost, escalation, the race."""
    tokens = record.tokens
    attrs: Attributes = {
        "gen_ai.usage.input_tokens": tokens.input,
        "gen_ai.usage.output_tokens": tokens.output,
        "taskroute.status": record.status,
        "taskroute.escalated": record.escalated,
        "taskroute.cost_usd": record.total_cost_usd,
        "taskroute.attempts": len(record.attempts),
    }
    if record.answered_by:
        attrs["gen_ai.response.model"] = record.answered_by
    if record.stood_in_for:
        attrs["taskroute.stood_in_for"] = record.stood_in_for
    if record.race_winner:
        attrs["taskroute.race.winner"] = record.race_winner
    if record.race_confidence is not None:
        attrs["taskroute.race.confidence"] = record.race_confidence
        attrs["taskroute.race.confidence_source"] = record.confidence_source or ""
    if record.rescued_by:
        attrs["taskroute.rescued_by"] = record.rescued_by
    if record.error:
        attrs["taskroute.error"] = record.error
    if log_content:
        attrs["gen_ai.input.messages"] = _messages(request)
        if answer is not None:
            attrs["gen_ai.output.messages"] = msgspec.json.encode([
                {"role": "assistant", "parts": [{"type": "text", "content": answer}]}]).decode()
    return attrs


def judge_start(request: ChatRequest, decision: Decision, origin: RequestContext, gate: str
                ) -> Attributes:
    """A judge's call, for the request `origin` describes: its model is `decision`'s."""
    attrs = request_start(request, decision, origin)
    attrs["gen_ai.request.model"] = decision.model
    attrs["taskroute.gate"] = gate
    return attrs


def judged(verdict: GateVerdict | None) -> Attributes:
    """The judge's verdict on the answer it graded (none: the gate was cancelled)."""
    if verdict is None:
        return {}
    attrs: Attributes = {"taskroute.judge.verdict": "pass" if verdict.passed else "fail"}
    if verdict.confidence is not None:
        attrs["taskroute.judge.confidence"] = verdict.confidence
    return attrs


def attempt_start(provider_kind: str, model: str, deployment: str, role: AttemptRole,
                  *, racing: bool = False, operation: str = OPERATION) -> Attributes:
    """`racing`: the request's task races its cheap pick against a strong model."""
    kind = provider_name(provider_kind)
    attrs: Attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": kind,
        "gen_ai.system": kind,  # the name before semantic conventions 1.37, still read widely
        "gen_ai.request.model": deployment.partition("/")[2] or deployment,
        "taskroute.model": model,
        "taskroute.deployment": deployment,
        "taskroute.attempt.role": role,
    }
    side = _side(role, racing)
    if side:
        attrs["taskroute.race.role"] = side
    return attrs


def attempt_end(attempt: Attempt, response: ChatResponse | None) -> Attributes:
    attrs: Attributes = {
        "gen_ai.usage.input_tokens": attempt.input_tokens,
        "gen_ai.usage.output_tokens": attempt.output_tokens,
        "taskroute.attempt.status": attempt.status,
        "taskroute.cost_usd": attempt.cost_usd,
    }
    if attempt.first_token_s is not None:
        attrs["taskroute.first_token_s"] = attempt.first_token_s
    if attempt.verdicts:
        attrs["taskroute.gate_verdicts"] = [
            f"{v.gate}:{'pass' if v.passed else 'fail'}" for v in attempt.verdicts]
        failed = [v.gate for v in attempt.verdicts if not v.passed]
        if failed:
            attrs["taskroute.gates_failed"] = failed
    if attempt.error:
        attrs["taskroute.error"] = attempt.error
        attrs["error.type"] = attempt.error.partition(":")[0]
    if response is not None:
        attrs["gen_ai.response.id"] = response.id
        if response.model:
            attrs["gen_ai.response.model"] = response.model
        reasons = [c.finish_reason for c in response.choices if c.finish_reason]
        if reasons:
            attrs["gen_ai.response.finish_reasons"] = reasons
    return attrs


def _side(role: AttemptRole, racing: bool) -> str:
    """Which side of a race or hedge a call is on ("" for neither)."""
    if role == "first" and racing:
        return "cheap"
    return {"race": "strong", "hedge": "hedge"}.get(role, "")


def _messages(request: ChatRequest) -> str:
    return msgspec.json.encode([
        {"role": m.role, "parts": [{"type": "text", "content": m.text}]}
        for m in request.messages]).decode()
