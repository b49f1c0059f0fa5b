"""What the call path records — every attempt, the route a request took, a circuit breaker's
trip — shared by the call path, the gates, the stores and the gateway (so it lives low in the
tree, beside `decision.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from taskroute.decision import Decision
from taskroute.response import ChatResponse, Usage

# What a request that its caller gave up on is logged with (499, as nginx logs it).
CLIENT_CLOSED = "the client closed the connection"
CLIENT_CLOSED_STATUS = 499

# Who asked: one of the gateway's client APIs, or the library itself.
Api = Literal["openai", "anthropic", "responses", "embeddings", "library"]
# "unchecked": an answer that went out live before a gate of its task could run (a judge).
AttemptStatus = Literal["ok", "unchecked", "rejected", "error", "cancelled", "skipped"]
# "rejected": a live stream's answer that failed its gates when it ended (the client has it).
RecordStatus = Literal["ok", "unchecked", "rejected", "error"]
# "rescue": a call continuing a stream that broke after its answer had begun.
AttemptRole = Literal["first", "retry", "escalation", "failover", "race", "hedge", "rescue"]


@dataclass(frozen=True, slots=True)
class GateVerdict:
    gate: str
    passed: bool
    reason: str = ""
    confidence: float | None = None
    cost_usd: float = 0.0           # what the gate itself spent (a judge calls a model)


@dataclass(frozen=True, slots=True)
class Tokens:
    """One call's tokens by kind. `input` counts every input token, the cached and
    cache-written ones included; `output` counts the reasoning ones."""

    input: int = 0
    output: int = 0
    cached_input: int = 0           # read from the prompt cache (cheaper)
    cache_write: int = 0            # written to the prompt cache (Anthropic: dearer)
    reasoning: int = 0              # spent thinking, part of `output`

    @classmethod
    def of(cls, usage: Usage) -> Tokens:
        return cls(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                   usage.cache_write_tokens, usage.reasoning_tokens)


@dataclass(frozen=True, slots=True)
class Attempt:
    model: str                      # the policy's model id (provider/model)
    deployment: str                 # the deployment actually called (differs on failover)
    role: AttemptRole
    status: AttemptStatus
    started_at: float               # unix seconds
    latency_s: float
    first_token_s: float | None = None
    input_tokens: int = 0           # every input token, cached ones included
    output_tokens: int = 0          # reasoning ones included
    cost_usd: float = 0.0
    verdicts: tuple[GateVerdict, ...] = ()
    error: str | None = None        # exception class and message; never a key
    cached_input_tokens: int = 0    # of input_tokens, read from the prompt cache
    cache_write_tokens: int = 0     # of input_tokens, written to the prompt cache
    reasoning_tokens: int = 0       # of output_tokens, spent reasoning
    step: int | None = None         # the agent run's step it belongs to (1, 2, ...), if any

    @property
    def tokens(self) -> Tokens:
        return Tokens(self.input_tokens, self.output_tokens, self.cached_input_tokens,
                      self.cache_write_tokens, self.reasoning_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- an agent run's steps (`Router.run`): logged as one request, its steps in it ----------------

# plan: the first step (it picks the tools); execute: a step after tool results; finalise: the
# answer, asked of the finaliser's tier when a cheaper tool step answered instead.
StepKind = Literal["plan", "execute", "finalise"]
# tool calls: the model called tools; answer: its text is the run's answer; draft: text from a
# tier below the finaliser's, handed on (paid for, not used).
StepOutcome = Literal["tool calls", "answer", "draft", "error"]


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One tool call a step made, as the log keeps it (never its arguments or result)."""

    name: str
    call_id: str
    status: str                     # ok, error, timeout, unknown_tool, bad_arguments
    latency_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Step:
    """One model step of an agent run: its own route, what it cost, the tools it called."""

    index: int                      # 1, 2, ... in the run
    kind: StepKind
    decision: Decision
    outcome: StepOutcome
    answered_by: str | None
    attempts: int                   # how many of the run's attempts are this step's
    cost_usd: float
    latency_s: float                # the model call (tools not included)
    tools: tuple[ToolRun, ...] = ()
    tools_s: float = 0.0            # wall time of its tool calls, run at once

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"step": self.index, "kind": self.kind, "task": d.task, "tier": d.tier,
                "model": d.model, "outcome": self.outcome, "answered_by": self.answered_by,
                "attempts": self.attempts, "cost_usd": self.cost_usd,
                "latency_s": self.latency_s, "tools_s": self.tools_s,
                "tools": [t.to_dict() for t in self.tools]}


@dataclass(slots=True)
class RouteRecord:
    """The route one request took: decision, every attempt, what it cost and how long."""

    request_id: str
    decision: Decision
    attempts: list[Attempt] = field(default_factory=list)
    answered_by: str | None = None    # the deployment that answered (`also at` on failover)
    stood_in_for: str | None = None   # the policy's model it answered for, when they differ
    status: RecordStatus = "ok"
    error: str | None = None
    latency_s: float = 0.0
    first_token_s: float | None = None
    race_winner: str | None = None
    started_at: float = 0.0
    race_confidence: float | None = None    # how sure the race's cheap answer was
    confidence_source: str | None = None    # what said so: gate:<name>, logprobs or estimate
    # A stream rescued mid-answer: characters of answer text the client had when it broke,
    # and the deployment whose continuation was spliced on there.
    seam_chars: int | None = None
    rescued_by: str | None = None
    steps: list[Step] = field(default_factory=list)  # an agent run's, in order (else none)

    @property
    def total_cost_usd(self) -> float:
        """Every attempt counts, rejected and cancelled ones included, and what its gates
        spent (a judge's call)."""
        return sum(a.cost_usd + sum(v.cost_usd for v in a.verdicts) for a in self.attempts)

    @property
    def answered_model(self) -> str | None:
        """The policy's model that answered (a failover deployment stands in for it)."""
        return self.stood_in_for or self.answered_by

    def answered(self, model: str, deployment: str) -> None:
        self.answered_by = deployment
        self.stood_in_for = model if model != deployment else None

    @property
    def tokens(self) -> Tokens:
        """Every attempt's tokens, summed by kind."""
        kinds = [a.tokens for a in self.attempts]
        return Tokens(*(sum(getattr(t, name) for t in kinds) for name in _TOKEN_KINDS))

    @property
    def escalated(self) -> bool:
        model = self.answered_model
        return (model is not None and model != self.decision.model) or any(
            a.role == "escalation" for a in self.attempts
        )

    def to_dict(self) -> dict[str, Any]:
        body = {
            "request_id": self.request_id,
            "decision": self.decision.to_dict(),
            "attempts": [a.to_dict() for a in self.attempts],
            "answered_by": self.answered_by,
            "stood_in_for": self.stood_in_for,
            "status": self.status,
            "error": self.error,
            "latency_s": self.latency_s,
            "first_token_s": self.first_token_s,
            "race_winner": self.race_winner,
            "race_confidence": self.race_confidence,
            "confidence_source": self.confidence_source,
            "seam_chars": self.seam_chars,
            "rescued_by": self.rescued_by,
            "escalated": self.escalated,
            "total_cost_usd": self.total_cost_usd,
            "started_at": self.started_at,
        }
        if self.steps:
            body["steps"] = [s.to_dict() for s in self.steps]
        return body


_TOKEN_KINDS = ("input", "output", "cached_input", "cache_write", "reasoning")


@dataclass(slots=True)
class RouteResult:
    """An answer in OpenAI's shape plus the route that produced it."""

    response: ChatResponse
    record: RouteRecord


@dataclass(frozen=True, slots=True)
class SharedSnapshot:
    """What deciding reads from state shared by replicas, fetched in one round trip before
    `decide` (which stays pure and synchronous): the session's recent escalations and today's
    spend per budget scope (`("user", id)`, `("key", fingerprint)`, `("day", "")`)."""

    escalations: int = 0
    spent: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked, and how: passed explicitly from the front door (the gateway's handler, or a
    library caller) through deciding and calling down to the log entry, instead of being set in
    one layer and read three layers away."""

    request_id: str | None = None
    api: Api = "library"
    task: str | None = None           # the caller's naming of the class (X-Taskroute-Task)
    key_id: str | None = None         # the gateway key's fingerprint, never the key
    variant: str | None = None        # the A/B variant serving it, set by `Experiment`
    shadow: Decision | None = None    # what the shadow policy would have chosen
    deadline_s: float | None = None   # the caller's deadline (X-Taskroute-Deadline), seconds
    snapshot: SharedSnapshot | None = None  # shared state fetched for it before deciding
    traceparent: str | None = None    # the client's W3C trace context, passed on upstream
    tracestate: str | None = None

    def with_(self, **changes: Any) -> RequestContext:
        return replace(self, **changes)


TripBy = Literal["here", "replica"]


@dataclass(slots=True)
class Trip:
    """One opening of a deployment's breaker (wall-clock unix seconds). `replica` names the
    process whose breaker opened (`calling.breaker.replica_name`; empty for one only heard of
    through shared state, which does not say); `by` is "here" when that is this process."""

    deployment: str
    opened_at: float
    reason: str
    retry_at: float                 # when the cool-down ends and a probe may go
    by: TripBy = "here"
    closed_at: float | None = None  # a probe succeeded (None: not yet, or not known here)
    id: str = ""                    # unique across replicas: the log's key for it
    replica: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
