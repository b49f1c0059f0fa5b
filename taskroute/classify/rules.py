"""How a request gets its task class: the caller names it, or the policy's `classify` rules
match it (first match wins), or the classifier reads it, or it falls to `when unsure`.

Rules read a bounded window of the prompt (its head and tail), so a huge prompt costs no more
to route than a long one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskroute.bounded import head_and_tail
from taskroute.classify.base import Classifier, Prediction
from taskroute.decision import TaskSource
from taskroute.exceptions import UnknownTask
from taskroute.policy.model import ClassifyRule, Policy
from taskroute.request import ChatRequest
from taskroute.signals import Signals

TASK_MODEL_PREFIX = "taskroute/"
RULE_HEAD, RULE_TAIL = 4000, 1000


class Facts:
    """What a policy condition sees: every signal, plus the task class once it is known."""

    __slots__ = ("signals", "task")

    def __init__(self, signals: Signals, task: str | None) -> None:
        self.signals = signals
        self.task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self.signals, name)


def choose_task(
    policy: Policy, classifier: Callable[[], Classifier | None], request: ChatRequest,
    signals: Signals, named: str | None, reasons: list[str], named_in: str = "",
) -> tuple[str, TaskSource, float | None]:
    """The request's task class and where it came from: the caller's naming, then the
    policy's rules (first match), then the classifier (`classifier()` loads it only when
    needed), then the policy's `when unsure` class. Each step says why in `reasons`."""
    tasks = policy.tasks
    for value, how in (
        (request.meta("task"), "metadata.task"),
        (named, named_in or "its task argument"),
        (request.model.removeprefix(TASK_MODEL_PREFIX)
         if request.model.startswith(TASK_MODEL_PREFIX) and request.model != "taskroute/auto"
         else None, f"the model name {request.model!r}"),
    ):
        if value:
            if value not in tasks:
                raise UnknownTask(value, list(tasks))
            reasons.append(f"The caller named the task {value} in {how}.")
            return value, "caller", None
    text = request.last_user_text
    window = head_and_tail(text, RULE_HEAD, RULE_TAIL)
    lowered = window.lower()
    system = request.system_text.lower()
    facts = Facts(signals, None)
    for rule in policy.classify_rules:
        if rule_matches(rule, facts, window, lowered, system):
            reasons.append(
                f"Policy rule at line {rule.line} classed it as {rule.task}: "
                f"{rule.describe()}."
            )
            return rule.task, "rule", None
    model = classifier()
    default = policy.default_task
    if model is None:
        reasons.append(f"No rule matched and the classifier is off; default class {default}.")
        return default, "default", None
    prediction = model.predict(text)
    threshold = policy.classifier.min_confidence
    if prediction.task in tasks and prediction.probability >= threshold:
        reasons.append(
            f"The classifier read it as {prediction.task} "
            f"({prediction.probability:.0%} sure, needs {threshold:.0%})."
        )
        return prediction.task, "classifier", prediction.probability
    shared = shared_tier(policy, prediction, threshold)
    if shared is not None:
        task, tier, mass, names = shared
        reasons.append(
            f"The classifier was unsure of the class ({prediction.probability:.0%} "
            f"{prediction.task}), but {', '.join(names)} all use the {tier} tier "
            f"({mass:.0%} together, needs {threshold:.0%}); read it as {task}."
        )
        return task, "classifier", mass
    why = (
        f"only {prediction.probability:.0%} sure of {prediction.task}, "
        f"needs {threshold:.0%}" if prediction.task in tasks
        else f"its guess {prediction.task} is not a class of this policy"
    )
    reasons.append(f"No rule matched and the classifier was unsure ({why}); "
                   f"default class {default}.")
    return default, "default", prediction.probability


def shared_tier(
    policy: Policy, prediction: Prediction, threshold: float,
) -> tuple[str, str, float, list[str]] | None:
    """What an unsure classifier still knows: when the likeliest classes it names, taken in
    order, reach `threshold` together while all served by one tier, the likeliest of them
    (its gates and adjustments), that tier, their joint probability and their names."""
    mass, tier, names = 0.0, None, []
    for task, probability in prediction.ranked:
        spec = policy.tasks.get(task)
        if spec is None or (tier is not None and spec.tier != tier):
            return None
        tier = spec.tier
        mass += probability
        names.append(task)
        if mass >= threshold:
            return (names[0], tier, mass, names) if len(names) > 1 else None
    return None


def rule_matches(
    rule: ClassifyRule, facts: Facts, text: str, lowered: str, system: str
) -> bool:
    if rule.condition is not None and not rule.condition(facts):
        return False
    if rule.keywords and not any(k in lowered for k in rule.keywords):
        return False
    if rule.pattern is not None and rule.pattern.search(text) is None:
        return False
    return not rule.system_markers or any(m in system for m in rule.system_markers)
