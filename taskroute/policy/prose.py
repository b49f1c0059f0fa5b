"""A policy rendered as sentences: what `taskroute policy show` prints."""

from __future__ import annotations

from taskroute.policy.agent import describe_agent
from taskroute.policy.model import GateSpec, Policy, RefusalHold


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _gates(gates: tuple[GateSpec, ...]) -> str:
    names = []
    for gate in gates:
        if gate.params:
            settings = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in gate.params.items())
            names.append(f"{gate.name} ({settings})")
        else:
            names.append(gate.name.replace("_", " "))
    return ", ".join(names)


def _title(task: str) -> str:
    words = ["QA" if w == "qa" else w for w in task.split("_")]
    return " ".join(words)[0].upper() + " ".join(words)[1:]


def describe_policy(policy: Policy) -> str:
    out: list[str] = [f"Policy {policy.name!r}" + (f" ({policy.source})" if policy.source else "")]
    if policy.description:
        out.append(policy.description)
    out.append("")
    tier_lines = []
    for tier in policy.tiers:
        model = policy.models[tier.model]
        tier_lines.append(
            f"{tier.name} ({tier.model}, {_money(model.price.input)} in / "
            f"{_money(model.price.output)} out per million tokens"
            + (f"; users see {_quoted(tier.label)}" if tier.label else "") + ")"
        )
    out.append(f"Tiers, cheapest first: {'; '.join(tier_lines)}.")
    out.append("")
    for task in policy.tasks.values():
        tier = policy.tier(task.tier)
        sentence = (
            f"{_title(task.name)} ({task.meaning}) goes to the "
            f"{task.tier} tier ({tier.model})"
        )
        gates = policy.gates_for(task.name, task.tier)
        if gates:
            sentence += f"; its answers must pass: {_gates(gates)}"
        if tier.escalate_to:
            sentence += f"; otherwise it escalates to {', then '.join(tier.escalate_to)}"
        sentence += "."
        if task.race is not None:
            sentence += (
                f" It races {tier.model} against {task.race.against} and keeps the cheap answer "
                f"when it passes with at least {task.race.min_confidence:.0%} confidence"
                + (f" ({task.race.judge} grades it when it has no logprobs)."
                   if task.race.judge else ".")
            )
        if task.router is not None:
            sentence += f" A learned router ({task.router.file}) picks its first model."
        if task.buffer_stream:
            sentence += " Streamed answers are buffered so the gates can run first."
        if task.stall_s is not None:
            sentence += f" Its streams stall after {task.stall_s:g}s without a token."
        if task.refusal_hold is not None:
            sentence += " " + _hold_sentence(task.refusal_hold, "its")
        if task.deadline_s is not None:
            sentence += f" It must be answered within {_duration(task.deadline_s)} in all."
        if task.label is not None:
            sentence += f" Users see {_quoted(task.label)} while it is answered."
        out.append(sentence)
    out.append("")
    if policy.classify_rules:
        out.append("When the caller does not name the task, these rules decide, first match wins:")
        out.extend(
            f"  {i}. It is {rule.task} when {rule.describe()}."
            for i, rule in enumerate(policy.classify_rules, 1)
        )
    if policy.classifier.enabled:
        out.append(
            f"Otherwise the {_classifier_name(policy.classifier.use)} decides when it is at least "
            f"{policy.classifier.min_confidence:.0%} sure; below that the request is treated as "
            f"{policy.default_task}."
        )
    else:
        out.append(f"Otherwise the request is treated as {policy.default_task}.")
    if policy.adjust_rules:
        out.append("")
        out.append("Then these adjustments apply, in order:")
        out.extend(f"  - {rule.describe().capitalize()}." for rule in policy.adjust_rules)
    if policy.user_tiers:
        out.append(f"User tiers, lowest first: {', '.join(policy.user_tiers)}.")
    c = policy.calling
    out.append("")
    out.append(
        f"Calls time out after {c.connect_timeout_s:g}s to connect, {c.first_token_timeout_s:g}s "
        f"to the first token and {c.total_timeout_s:g}s in all, and a stream stalls after "
        f"{c.stall_timeout_s:g}s without a token; a failed call is retried "
        f"{c.retries} time{'s' if c.retries != 1 else ''} on the same model before escalating; "
        f"a deployment that fails {c.breaker_failures} times in a row rests for "
        f"{c.breaker_cooldown_s:g}s."
        + (f" A call slower than its deployment's recent p{c.hedge_quantile * 100:g} (to the "
           "first token of a live stream, or its held opening; to the whole answer of one read "
           "whole) is hedged on the model's next deployment." if c.hedge else "")
        + (" A stream that breaks or stalls after its answer has begun is continued by the next "
           "model in the chain, in the same stream (one carrying a tool call or a JSON answer "
           "cannot be continued soundly: it ends with an error event instead)."
           if c.rescue_streams else
           " A stream that breaks or stalls after its answer has begun ends with an error event.")
        + " " + _hold_sentence(c.refusal_hold, "a")
    )
    out.append(_deadline_sentence(policy))
    out.append(describe_agent(policy))
    labels = _label_sentence(policy)
    if labels is not None:
        out.append(labels)
    if policy.aliases:
        names = ", ".join(f"{a} for {m}" for a, m in policy.aliases.items())
        out.append(f"Aliases: {names}.")
    out.append(
        "A request naming a model is routed by its task class all the same."
        if policy.named_models == "routed" else
        "A request naming a model is served by that model (routing bypassed)."
    )
    out.append(
        "Prompt and answer text are stored in the request log." if policy.log_content
        else "Prompt and answer text are not stored in the request log."
    )
    out.append(
        f"Requests older than {_duration(policy.log_keep_s)} are deleted from the log."
        if policy.log_keep_s is not None else "The request log keeps every request."
    )
    return "\n".join(out)


def _quoted(label: str) -> str:
    return f"\u201c{label}\u201d"


def _label_sentence(policy: Policy) -> str | None:
    """How a label reaches users, when the policy gives any."""
    if not any(t.label for t in policy.tiers) and not any(
            t.label for t in policy.tasks.values()):
        return None
    return ("A route's label (its task's, else its tier's) goes out in the X-Taskroute-Label "
            "header, and as a stream's first event when the client asks with "
            "X-Taskroute-Route-Event: 1.")


def _hold_sentence(hold: RefusalHold, whose: str) -> str:
    """`whose`: "a" (the policy's) or "its" (a task's)."""
    if not hold.chars:
        return ("Its live streams" if whose == "its" else "Live streams") + \
            " go out as they come, refusals and all."
    early = (", or less once its first word shows it is no refusal" if hold.release_early
             else "")
    return (f"The first {hold.chars} characters of {whose} live stream (or what came in "
            f"{_duration(hold.at_most_s)}{early}) are held for the refusal gate, so a refusal "
            "escalates before the client sees it.")


def _deadline_sentence(policy: Policy) -> str:
    caller = ("A caller may ask for less time, never more, with the X-Taskroute-Deadline header "
              "or metadata.deadline_s (seconds).")
    limit = policy.calling.deadline_s
    if limit is None:
        return ("A request has no deadline as a whole unless its task sets one. " + caller)
    return (f"Each request must be answered within {_duration(limit)} in all, every retry, "
            "backoff, failover and escalation included: each call gets only the time that is "
            "left, a Retry-After longer than that (or than the backoff cap) moves on at once, "
            "and once the time is up the client gets a 504. " + caller)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _classifier_name(use: str) -> str:
    return "trained classifier" if use == "linear" else f"{use} classifier"
