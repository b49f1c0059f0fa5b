"""Which tier and chain serve a request once its task class is known: the policy's tier for
the task, moved by its `adjust` rules; models whose context window the input overflows left
out; and what the request is estimated to cost on a model."""

from __future__ import annotations

from taskroute.classify.rules import Facts
from taskroute.exceptions import ContextWindowExceeded
from taskroute.policy.model import Policy
from taskroute.request import ChatRequest
from taskroute.signals import Signals
from taskroute.tasks import DEFAULT_OUTPUT_TOKENS, TYPICAL_OUTPUT_TOKENS


def choose_tier(
    policy: Policy, task: str, signals: Signals, reasons: list[str], *,
    start: str | None = None,
) -> str:
    """The task's tier (or `start`, a learned router's pick), moved by the policy's `adjust`
    rules in order; each move says why in `reasons`."""
    names = policy.tier_names
    rank = names.index
    if start is None:
        start = policy.tasks[task].tier
        reasons.append(f"The policy sends {task} to the {start} tier.")
    index = rank(start)
    facts = Facts(signals, task)
    top = len(names) - 1
    for rule in policy.adjust_rules:
        if not rule.condition(facts):
            continue
        before = index
        if rule.action == "use":
            index = rank(rule.tier or start)
        elif rule.action == "at_least":
            index = max(index, rank(rule.tier or start))
        elif rule.action == "at_most":
            index = min(index, rank(rule.tier or start))
        elif rule.action == "up":
            index = min(top, index + rule.steps)
        else:
            index = max(0, index - rule.steps)
        if index != before:
            verb = "Raised" if index > before else "Lowered"
            reasons.append(
                f"{verb} from {names[before]} to {names[index]} by the rule at line "
                f"{rule.line}: {rule.describe()}."
            )
    return names[index]


def fit_context(
    policy: Policy, chain: tuple[str, ...], input_tokens: int, output_tokens: int,
    reasons: list[str],
) -> tuple[str, ...]:
    """The chain without the models whose context window cannot hold the input plus the
    output budget (`output_budget`); each model left out says why in `reasons`."""
    models = policy.models
    needed = input_tokens + output_tokens
    fitting = tuple(m for m in chain if models[m].context >= needed)
    if fitting == chain:
        return chain
    if not fitting:
        raise ContextWindowExceeded(
            f"the input (about {input_tokens:,} tokens) and its output budget "
            f"({output_tokens:,} tokens) are more than the context window of every model in "
            f"the chain holds ({', '.join(f'{m}: {models[m].context:,}' for m in chain)})",
            param="messages",
        )
    for m in chain:
        if m not in fitting:
            reasons.append(
                f"Skipped {m}: its context window ({models[m].context:,} tokens) cannot hold "
                f"about {input_tokens:,} input tokens plus {output_tokens:,} output tokens."
            )
    return fitting


def output_budget(policy: Policy, task: str, request: ChatRequest) -> int:
    """The output tokens a model's window must leave room for: `max_tokens` when the request
    sets it, else the task's typical output."""
    if request.max_tokens is not None:
        return request.max_tokens
    spec = policy.tasks.get(task)
    return (spec.output_tokens if spec else None) or TYPICAL_OUTPUT_TOKENS.get(
        task, DEFAULT_OUTPUT_TOKENS)


def estimate_cost(
    policy: Policy, model: str, task: str, signals: Signals, request: ChatRequest
) -> float:
    """USD the request would cost on `model`: its input, and the task's typical output (or
    `max_tokens` when lower), at the model's list price."""
    spec = policy.tasks.get(task)
    output = (spec.output_tokens if spec else None) or TYPICAL_OUTPUT_TOKENS.get(
        task, DEFAULT_OUTPUT_TOKENS
    )
    if request.max_tokens is not None:
        output = min(output, request.max_tokens)
    return round(policy.models[model].price.cost(signals.input_tokens, output), 8)
