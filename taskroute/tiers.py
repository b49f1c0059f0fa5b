"""Which tier and chain serve a request once its task class is known: the policy's tier for
the task, moved by its `adjust` rules; models whose context window the input overflows left
out; and what the request is estimated to cost on a model."""

from __future__ import annotations

from taskroute.classify.rules import Facts
from taskroute.exceptions import InvalidRequest
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
    policy: Policy, chain: tuple[str, ...], input_tokens: int, reasons: list[str]
) -> tuple[str, ...]:
    """The chain without the models whose context window the input does not fit."""
    models = policy.models
    fitting = tuple(m for m in chain if models[m].context >= input_tokens)
    if fitting == chain:
        return chain
    if not fitting:
        raise InvalidRequest(
            f"the input (about {input_tokens:,} tokens) is longer than the context window "
            f"of every model in the chain ({', '.join(chain)})"
        )
    skipped = [m for m in chain if m not in fitting]
    reasons.append(
        f"Skipped {', '.join(skipped)}: about {input_tokens:,} input tokens exceed "
        "its context window."
    )
    return fitting


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
