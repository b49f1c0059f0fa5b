"""A policy rendered as sentences: what `taskroute policy show` prints."""

from __future__ import annotations

from taskroute.policy.model import GateSpec, Policy


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
            f"{_money(model.price.output)} out per million tokens)"
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
        f"to the first token and {c.total_timeout_s:g}s in all; a failed call is retried "
        f"{c.retries} time{'s' if c.retries != 1 else ''} on the same model before escalating; "
        f"a deployment that fails {c.breaker_failures} times in a row rests for "
        f"{c.breaker_cooldown_s:g}s."
        + (f" Slow first tokens are hedged after the p{c.hedge_quantile * 100:g} latency."
           if c.hedge else "")
    )
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
    return "\n".join(out)


def _classifier_name(use: str) -> str:
    return "trained classifier" if use == "linear" else f"{use} classifier"
