"""The policy as frozen, typed objects: what the loader builds and everything else reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from taskroute.policy.conditions import Condition


def split_model_id(model_id: str) -> tuple[str, str]:
    """`provider/model` → (provider, model). The one place a model id is taken apart."""
    provider, sep, name = model_id.partition("/")
    if not sep or not provider or not name:
        raise ValueError(f"a model id is written provider/model, not {model_id!r}")
    return provider, name


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens: input, output, and the input read from (`cached_input`) or
    written to (`cache_write`) a prompt cache. A cache price not given is the input price
    (no discount assumed). Reasoning tokens are output tokens and priced as such."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(
        self, input_tokens: int, output_tokens: int, *, cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """`input_tokens` counts every input token, cached and cache-written ones included."""
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        plain = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        return (plain * self.input + cached_input_tokens * cached
                + cache_write_tokens * write + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    api: str                      # a provider kind registered in `taskroute.plugins.PROVIDERS`
    base_url: str
    api_key_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    header_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # ^ header name → the environment variable holding its value (a key: never in the file)
    simulated: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # ^ the kind's own settings, passed through to its factory (built-ins take none)
    line: int = 0                 # where the policy declares it, for errors found when built


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str                       # provider/model
    tier: str
    price: Price
    context: int
    also_at: tuple[str, ...] = ()  # equivalent deployments on other providers, for failover

    @property
    def provider(self) -> str:
        return split_model_id(self.id)[0]

    @property
    def upstream_name(self) -> str:
        return split_model_id(self.id)[1]

    @property
    def deployments(self) -> tuple[str, ...]:
        return (self.id, *self.also_at)


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """A model `/v1/embeddings` passes requests to (never routed): priced per input token."""

    id: str                       # provider/model
    price: Price                  # only `input` is charged

    @property
    def provider(self) -> str:
        return split_model_id(self.id)[0]

    @property
    def upstream_name(self) -> str:
        return split_model_id(self.id)[1]


@dataclass(frozen=True, slots=True)
class GateSpec:
    name: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RaceSpec:
    against: str            # the strong model raced against the first pick
    min_confidence: float   # the cheap answer wins only at or above this confidence
    judge: str | None = None  # a model grading the cheap answer when it has no logprobs


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    model: str
    escalate_to: tuple[str, ...]  # model ids, in order
    gates: tuple[GateSpec, ...] = ()
    label: str | None = None      # what a user may be shown while it answers ("Quick answer")

    @property
    def chain(self) -> tuple[str, ...]:
        return (self.model, *self.escalate_to)


@dataclass(frozen=True, slots=True)
class LearnedRouterSpec:
    """A learned router file (from `taskroute train`) that picks a task's first model."""

    file: str                            # resolved against the policy file's folder
    models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # ^ the file's model names → the policy's model ids, where they differ
    lam: float | None = None             # overrides the file's cost trade-off
    target: float | None = None          # or: the cheapest model whose P(success) clears it


@dataclass(frozen=True, slots=True)
class RefusalHold:
    """How much of a live stream's opening is held back for the gates that judge an opening
    (the refusal gate) before any of it goes out: `chars` characters of answer, or what has
    come after `at_most_s`, whichever is first. `chars` 0: nothing is held. `release_early`
    (off by default): let it go as soon as every opening gate is sure of what it has (an
    answer whose first word no refusal starts with), not only at `chars` — a faster first
    token, but a short answer that would have ended inside the hold is no longer judged whole
    there, so a cut-short one is rescued in view rather than escalated unseen."""

    chars: int = 40
    at_most_s: float = 0.3
    release_early: bool = False


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    meaning: str
    tier: str
    gates: tuple[GateSpec, ...] = ()
    race: RaceSpec | None = None
    buffer_stream: bool = False
    output_tokens: int | None = None
    router: LearnedRouterSpec | None = None  # a learned router picks the first model
    stall_s: float | None = None         # its streams' inter-token timeout (else the calling one)
    refusal_hold: RefusalHold | None = None  # its live streams' hold (else the calling one)
    deadline_s: float | None = None          # replaces the policy's `calling: deadline`
    label: str | None = None                 # shown to users instead of its tier's label


@dataclass(frozen=True, slots=True)
class ClassifyRule:
    task: str
    line: int
    condition: Condition | None = None
    keywords: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    system_markers: tuple[str, ...] = ()

    def describe(self) -> str:
        parts: list[str] = []
        if self.condition is not None:
            parts.append(self.condition.text)
        if self.keywords:
            parts.append("the prompt mentions " + " or ".join(repr(k) for k in self.keywords))
        if self.pattern is not None:
            parts.append(f"the prompt matches /{self.pattern.pattern}/")
        if self.system_markers:
            parts.append(
                "the system prompt mentions " + " or ".join(repr(k) for k in self.system_markers)
            )
        return " and ".join(parts)


NamedModels = Literal["as named", "routed"]
AdjustAction = Literal["use", "at_least", "at_most", "up", "down"]


@dataclass(frozen=True, slots=True)
class AdjustRule:
    condition: Condition
    action: AdjustAction
    line: int
    tier: str | None = None
    steps: int = 1
    because: str | None = None

    def describe(self) -> str:
        if self.action == "use":
            what = f"use the {self.tier} tier"
        elif self.action == "at_least":
            what = f"use at least the {self.tier} tier"
        elif self.action == "at_most":
            what = f"use at most the {self.tier} tier"
        else:
            what = f"move {self.action} {self.steps} tier{'s' if self.steps > 1 else ''}"
        why = f", because {self.because}" if self.because else ""
        return f"when {self.condition.text}, {what}{why}"


@dataclass(frozen=True, slots=True)
class ClassifierSettings:
    enabled: bool = True
    min_confidence: float = 0.5
    model_file: str | None = None  # None: the classifier that ships with taskroute
    use: str = "linear"            # a classifier registered in `taskroute.plugins.CLASSIFIERS`
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    line: int = 0


@dataclass(frozen=True, slots=True)
class CallingSettings:
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 30.0
    total_timeout_s: float = 120.0
    stall_timeout_s: float = 20.0     # a stream with no token for this long has stalled
    rescue_streams: bool = True       # a stream broken mid-answer is continued by the next model
    refusal_hold: RefusalHold = field(default_factory=RefusalHold)  # a live opening held back
    retries: int = 1                  # retries on the same model before escalating
    backoff_s: float = 0.25           # first backoff; doubles, with jitter, up to the cap
    backoff_max_s: float = 8.0
    breaker_failures: int = 5         # consecutive failures that open a deployment's breaker
    breaker_cooldown_s: float = 30.0
    hedge: bool = False               # send to the next deployment when first token is late
    hedge_quantile: float = 0.95
    hedge_min_samples: int = 20
    deadline_s: float | None = None   # the whole request, every retry and backoff included


# -- agent runs (`Router.run`): which route each step takes, and the run's limits ----------------

@dataclass(frozen=True, slots=True)
class StepRoute:
    """How one kind of agent step is routed: as a task class (its tier, gates and adjust rules),
    or pinned to a tier; neither is the class of the user's request (`by task`)."""

    task: str | None = None
    tier: str | None = None

    def describe(self) -> str:
        if self.tier is not None:
            return f"the {self.tier} tier"
        if self.task is not None:
            return f"the {self.task} class's tier"
        return "the tier of the user's request's class"


@dataclass(frozen=True, slots=True)
class AgentSpec:
    plan: StepRoute = StepRoute(task="tool_use")      # the first step: it picks the tools
    execute: StepRoute = StepRoute(task="tool_use")   # each step after tool results
    finalise: StepRoute = StepRoute()                 # the answer (by task)
    max_steps: int = 8                                # model calls in one run
    max_cost_usd: float | None = None                 # the run's whole cost
    deadline_s: float | None = None                   # the run's whole time
    tool_timeout_s: float = 30.0                      # each tool call
    parallel_tools: int = 8                           # tool calls running at once


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """One arm of an A/B test: `policy` None is the policy as written (the control)."""

    name: str
    weight: float
    policy: Policy | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """Daily budgets in USD (reset at 00:00 UTC): per user, per gateway key, and in all."""

    per_user_usd: float | None = None
    per_key_usd: float | None = None
    per_day_usd: float | None = None
    step_down_below: float = 0.2   # the share of a budget left under which requests step down
    line: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    description: str
    source: str | None
    providers: Mapping[str, ProviderSpec]
    models: Mapping[str, ModelSpec]
    tiers: tuple[TierSpec, ...]            # cheapest first: "up" is later in this tuple
    tasks: Mapping[str, TaskSpec]
    default_task: str
    classify_rules: tuple[ClassifyRule, ...] = ()
    adjust_rules: tuple[AdjustRule, ...] = ()
    classifier: ClassifierSettings = ClassifierSettings()
    user_tiers: tuple[str, ...] = ()
    session_window_s: float = 900.0
    calling: CallingSettings = CallingSettings()
    log_content: bool = False
    gates: tuple[GateSpec, ...] = ()       # applied to every task
    # when the shared state (Redis) is down or slow: "fail open" serves on this process's own
    # counters, "fail closed" refuses with 503
    shared_state_down: str = "fail open"
    extensions: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    variants: tuple[VariantSpec, ...] = ()  # A/B arms, sticky per user or session
    shadow: Policy | None = None            # a candidate whose decisions are logged, not served
    budgets: BudgetSpec | None = None
    log_keep_s: float | None = None         # rows older than this are pruned (None: kept)
    # Other names for the policy's models (an application's `gpt-4o` → `openai/gpt-4.1`), and
    # whether a request naming a model is served by it (`as named`) or routed by its task
    # class all the same (`routed`).
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    named_models: NamedModels = "as named"
    embeddings: Mapping[str, EmbeddingSpec] = field(default_factory=lambda: MappingProxyType({}))
    # ^ the first is the one `model: auto` (or `taskroute`) gets
    agent: AgentSpec = AgentSpec()          # how `Router.run` routes an agent's steps

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    def tier(self, name: str) -> TierSpec:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def tier_index(self, name: str) -> int:
        return self.tier_names.index(name)

    def deadline_for(self, task: str) -> float | None:
        """Seconds a request of `task` is given in all: the task's own, else the policy's."""
        spec = self.tasks.get(task)
        if spec is not None and spec.deadline_s is not None:
            return spec.deadline_s
        return self.calling.deadline_s

    def label_for(self, task: str, tier: str) -> str | None:
        """What a user may be shown of a route: the task's label, else its tier's, else none."""
        spec = self.tasks.get(task)
        if spec is not None and spec.label is not None:
            return spec.label
        for candidate in self.tiers:
            if candidate.name == tier:
                return candidate.label
        return None

    def gates_for(self, task: str, tier: str) -> tuple[GateSpec, ...]:
        """Gates that judge an answer: the policy's, the tier's, then the task's."""
        task_gates = self.tasks[task].gates if task in self.tasks else ()
        return (*self.gates, *self.tier(tier).gates, *task_gates)
