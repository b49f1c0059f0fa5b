"""Policy file → frozen `Policy`. Every problem names the file, the line, the key and what was
expected; an unknown key is an error, never ignored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskroute.exceptions import ConditionError
from taskroute.plugins import CLASSIFIERS, PROVIDERS, Registry
from taskroute.policy.agent import SECTION as AGENT_SECTION
from taskroute.policy.agent import default_agent, parse_agent
from taskroute.policy.conditions import compile_condition
from taskroute.policy.experiments import SECTIONS as EXPERIMENT_SECTIONS
from taskroute.policy.experiments import parse_sections
from taskroute.policy.model import (
    AdjustAction,
    AdjustRule,
    CallingSettings,
    ClassifierSettings,
    ClassifyRule,
    EmbeddingSpec,
    GateSpec,
    LearnedRouterSpec,
    ModelSpec,
    Policy,
    Price,
    ProviderSpec,
    RaceSpec,
    RefusalHold,
    TaskSpec,
    TierSpec,
    split_model_id,
)
from taskroute.policy.nodes import Node, parse_yaml, read_yaml
from taskroute.tasks import DEFAULT_TASKS

TOP_LEVEL = (
    "name", "description", "providers", "models", "tiers", "tasks", "classify", "when unsure",
    "classifier", "user tiers", "adjust", "session window", "calling", "log content", "log keep",
    "gates", "aliases", "named models", "embeddings", "shared state", *EXPERIMENT_SECTIONS,
    AGENT_SECTION,
)
ADJUST_ACTIONS: dict[str, AdjustAction] = {
    "use": "use", "at least": "at_least", "at most": "at_most", "move up": "up",
    "move down": "down",
}


def load_policy(path: str | Path) -> Policy:
    return parse_root(read_yaml(path), str(path))


def default_policy_text() -> str:
    return resources.files("taskroute").joinpath("data", "default_policy.yaml").read_text("utf-8")


def load_default_policy() -> Policy:
    return parse_policy(default_policy_text(), file="<default policy>")


def parse_policy(text: str, *, file: str | None = None) -> Policy:
    return parse_root(parse_yaml(text, file), file)


def parse_root(root: Node, file: str | None) -> Policy:
    top = root.fields(TOP_LEVEL, required=("models", "tiers", "tasks"))
    providers = _providers(top["providers"]) if "providers" in top else {}
    user_tiers = top["user tiers"].text_list() if "user tiers" in top else ()
    models = _models(top["models"], providers)
    embeddings = _embeddings(top["embeddings"], providers) if "embeddings" in top else {}
    tiers = _tiers(top["tiers"], models)
    tier_names = tuple(t.name for t in tiers)
    tasks = _tasks(top["tasks"], tier_names, tiers, models, file)
    task_names = tuple(tasks)
    default_task = top["when unsure"].one_of(task_names) if "when unsure" in top else (
        "chat" if "chat" in tasks else task_names[0]
    )
    context = {"tasks": task_names, "user_tiers": user_tiers}
    return Policy(
        name=top["name"].text() if "name" in top else (Path(file).stem if file else "policy"),
        description=top["description"].text().strip() if "description" in top else "",
        source=file,
        providers=MappingProxyType(providers),
        models=MappingProxyType(models),
        tiers=tiers,
        tasks=MappingProxyType(tasks),
        default_task=default_task,
        classify_rules=_classify(top["classify"], context) if "classify" in top else (),
        adjust_rules=(
            _adjust(top["adjust"], context, tier_names) if "adjust" in top else ()
        ),
        classifier=_classifier(top["classifier"]) if "classifier" in top else ClassifierSettings(),
        user_tiers=user_tiers,
        session_window_s=top["session window"].seconds() if "session window" in top else 900.0,
        calling=_calling(top["calling"]) if "calling" in top else CallingSettings(),
        log_content=top["log content"].boolean() if "log content" in top else False,
        log_keep_s=_positive_seconds(top["log keep"]) if "log keep" in top else None,
        gates=_gates(top["gates"]) if "gates" in top else (),
        aliases=MappingProxyType(
            _aliases(top["aliases"], {**models, **embeddings}) if "aliases" in top else {}),
        embeddings=MappingProxyType(embeddings),
        named_models="routed" if "named models" in top and top["named models"].one_of(
            ("as named", "routed")) == "routed" else "as named",
        shared_state_down=_shared_state(top["shared state"]) if "shared state" in top
        else "fail open",
        agent=parse_agent(top[AGENT_SECTION], tier_names, task_names) if AGENT_SECTION in top
        else default_agent(task_names),
        **parse_sections(top, root, file, parse_root),
    )


# -- sections -----------------------------------------------------------------------------------


def _providers(node: Node) -> dict[str, ProviderSpec]:
    providers: dict[str, ProviderSpec] = {}
    for name, spec in node.items():
        if "/" in name:
            spec.fail("a provider name cannot contain '/'")
        f = spec.fields(
            ("api", "base url", "api key env", "headers", "simulated", "options"),
            required=("base url",),
        )
        base_url = f["base url"].text().rstrip("/")
        if not re.match(r"^https?://", base_url):
            f["base url"].fail(f"expected an http:// or https:// URL, got {base_url!r}")
        headers, header_env = _headers(f["headers"]) if "headers" in f else ({}, {})
        providers[name] = ProviderSpec(
            name=name,
            api=_registered(f["api"], PROVIDERS) if "api" in f else "openai",
            base_url=base_url,
            api_key_env=f["api key env"].text() if "api key env" in f else None,
            headers=MappingProxyType(headers),
            header_env=MappingProxyType(header_env),
            simulated=f["simulated"].boolean() if "simulated" in f else False,
            options=_options(f["options"]) if "options" in f else MappingProxyType({}),
            line=spec.line,
        )
    return providers


def _headers(node: Node) -> tuple[dict[str, str], dict[str, str]]:
    """Fixed header values, and those read from the environment (`api-key: {env: AZURE_KEY}`,
    so a key is never written in the policy)."""
    fixed: dict[str, str] = {}
    from_env: dict[str, str] = {}
    for name, value in node.items():
        if value.is_mapping():
            from_env[name] = value.fields(("env",), required=("env",))["env"].text()
        else:
            fixed[name] = value.text()
    return fixed, from_env


def _registered(node: Node, registry: Registry) -> str:
    """A name the registry knows (built in or from an installed plugin)."""
    name = node.text()
    if name not in registry:
        node.fail(registry.unknown(name))
    return name


def _options(node: Node) -> MappingProxyType[str, Any]:
    if not node.is_mapping():
        node.fail("options are a mapping of the extension's own settings")
    return MappingProxyType(_plain(node))


def _model_id(node: Node, providers: dict[str, ProviderSpec]) -> str:
    model_id = node.text()
    _check_model_key(model_id, node, providers)
    return model_id


def _check_model_key(model_id: str, spec: Node, providers: dict[str, ProviderSpec]) -> None:
    """A `provider/model` key whose provider the policy declares (when it declares any)."""
    try:
        provider, _ = split_model_id(model_id)
    except ValueError as exc:
        spec.fail(str(exc))
    if providers and provider not in providers:
        spec.fail(f"unknown provider '{provider}'; declared: {', '.join(providers)}")


def _models(node: Node, providers: dict[str, ProviderSpec]) -> dict[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for model_id, spec in node.items():
        _check_model_key(model_id, spec, providers)
        f = spec.fields(("tier", "price", "context", "also at"), required=("tier", "price"))
        models[model_id] = ModelSpec(
            id=model_id,
            tier=f["tier"].text(),
            price=_price(f["price"]),
            context=f["context"].integer(low=1) if "context" in f else 128_000,
            also_at=tuple(
                _model_id(item, providers) for item in f["also at"].sequence()
            ) if "also at" in f else (),
        )
    if not models:
        node.fail("declare at least one model")
    return models


def _embeddings(node: Node, providers: dict[str, ProviderSpec]) -> dict[str, EmbeddingSpec]:
    """`{openai/text-embedding-3-small: {price: {input: 0.02}}}`: the models `/v1/embeddings`
    may pass a request to."""
    out: dict[str, EmbeddingSpec] = {}
    for model_id, spec in node.items():
        _check_model_key(model_id, spec, providers)
        price = spec.fields(("price",), required=("price",))["price"]
        f = price.fields(("input",), required=("input",))
        out[model_id] = EmbeddingSpec(model_id, Price(f["input"].number(low=0), 0.0))
    if not out:
        node.fail("name at least one embedding model")
    return out


def _aliases(node: Node, models: Mapping[str, object]) -> dict[str, str]:
    """`{gpt-4o: openai/gpt-4.1, ...}`: names an application already sends, each standing for
    one of the policy's models (never for another alias, nor shadowing a model id)."""
    if not node.is_mapping():
        node.fail("aliases map a model name to one of the policy's model ids")
    aliases: dict[str, str] = {}
    for name, target in node.items():
        if name in models:
            target.fail(f"{name!r} is already a model id of the policy; an alias needs "
                        "another name")
        model_id = target.text()
        if model_id not in models:
            target.fail(f"unknown model {model_id!r}; declared: {', '.join(models)}")
        aliases[name] = model_id
    return aliases


def _price(node: Node) -> Price:
    """`{input, output, cached input, cache write}`: USD per million tokens."""
    f = node.fields(("input", "output", "cached input", "cache write"),
                    required=("input", "output"))
    return Price(
        f["input"].number(low=0), f["output"].number(low=0),
        cached_input=f["cached input"].number(low=0) if "cached input" in f else None,
        cache_write=f["cache write"].number(low=0) if "cache write" in f else None,
    )


def _tiers(node: Node, models: dict[str, ModelSpec]) -> tuple[TierSpec, ...]:
    entries = list(node.items())
    names = [name for name, _ in entries]
    tiers: list[TierSpec] = []
    for name, spec in entries:
        f = spec.fields(("use", "escalate to", "gates", "label"), required=("use",))
        first = _resolve_model(f["use"], models, names, tiers)
        escalate = tuple(
            _resolve_model(item, models, names, tiers)
            for item in (f["escalate to"].sequence() if "escalate to" in f else [])
        )
        tiers.append(TierSpec(
            name=name, model=first, escalate_to=escalate,
            gates=_gates(f["gates"]) if "gates" in f else (),
            label=_label(f["label"]) if "label" in f else None,
        ))
    if not tiers:
        node.fail("declare at least one tier")
    for model in models.values():
        if model.tier not in names:
            node.fail(f"model '{model.id}' names tier '{model.tier}', which is not declared")
    return tuple(tiers)


def _resolve_model(
    node: Node, models: dict[str, ModelSpec], tier_names: list[str], done: list[TierSpec]
) -> str:
    """A model id, or a tier's name standing for that tier's first pick."""
    value = node.text()
    if value in models:
        return value
    for tier in done:
        if tier.name == value:
            return tier.model
    if value in tier_names:
        for model in models.values():
            if model.tier == value:
                return model.id
    node.fail(f"'{value}' is neither a declared model nor a tier with a model")


def _tasks(
    node: Node, tier_names: tuple[str, ...], tiers: tuple[TierSpec, ...],
    models: dict[str, ModelSpec], file: str | None,
) -> dict[str, TaskSpec]:
    tasks: dict[str, TaskSpec] = {}
    for name, spec in node.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            spec.fail("task class names are lower_snake_case words")
        if not spec.is_mapping():  # `extraction: fast`
            tasks[name] = TaskSpec(name, DEFAULT_TASKS.get(name, name), spec.one_of(tier_names))
            continue
        f = spec.fields(("tier", "meaning", "gates", "race", "buffer stream", "output tokens",
                         "router", "stall", "deadline", "hold for refusal", "label"),
                        required=("tier",))
        meaning = f["meaning"].text() if "meaning" in f else DEFAULT_TASKS.get(name)
        if meaning is None:
            spec.fail(f"task class '{name}' is not a default one; give it a 'meaning'")
        tasks[name] = TaskSpec(
            name=name,
            meaning=meaning,
            tier=f["tier"].one_of(tier_names),
            gates=_gates(f["gates"]) if "gates" in f else (),
            race=_race(f["race"], models, list(tier_names), list(tiers)) if "race" in f else None,
            buffer_stream=f["buffer stream"].boolean() if "buffer stream" in f else False,
            output_tokens=f["output tokens"].integer(low=1) if "output tokens" in f else None,
            router=_learned_router(f["router"], models, file) if "router" in f else None,
            stall_s=f["stall"].seconds() if "stall" in f else None,
            refusal_hold=_refusal_hold(f["hold for refusal"]) if "hold for refusal" in f
            else None,
            deadline_s=_positive_seconds(f["deadline"]) if "deadline" in f else None,
            label=_label(f["label"]) if "label" in f else None,
        )
    if not tasks:
        node.fail("declare at least one task class")
    return tasks


LABEL_MAX_CHARS = 80


def _label(node: Node) -> str:
    """A tier's or task's user-facing label ("Using advanced analysis"): one short line, since
    it goes out as a header and a stream's first event."""
    label = node.text().strip()
    if any(not ch.isprintable() for ch in label):
        node.fail("a label is one line of printable text")
    if len(label) > LABEL_MAX_CHARS:
        node.fail(f"a label is at most {LABEL_MAX_CHARS} characters, this one {len(label)}")
    return label


def _learned_router(
    node: Node, models: dict[str, ModelSpec], policy_file: str | None
) -> LearnedRouterSpec:
    """`router: routers/qa.npz`, or a mapping with `file`, `models`, `lambda` or `target`."""
    f = node.fields(("file", "models", "lambda", "target"), required=("file",)) \
        if node.is_mapping() else {"file": node}
    path = Path(f["file"].text())
    if not path.is_absolute() and policy_file and not policy_file.startswith("<"):
        path = Path(policy_file).parent / path
    if not path.is_file():
        f["file"].fail(f"no learned router file at {path} (build one with `taskroute train`)")
    names: dict[str, str] = {}
    if "models" in f:
        for name, target in f["models"].items():
            model_id = target.text()
            if model_id not in models:
                target.fail(f"'{model_id}' is not a model of this policy")
            names[name] = model_id
    return LearnedRouterSpec(
        file=str(path),
        models=MappingProxyType(names),
        lam=f["lambda"].number(low=0) if "lambda" in f else None,
        target=f["target"].number(low=0, high=1) if "target" in f else None,
    )


def _race(
    node: Node, models: dict[str, ModelSpec], tier_names: list[str], tiers: list[TierSpec]
) -> RaceSpec | None:
    if not node.is_mapping():
        return RaceSpec(tiers[-1].model, 0.0) if node.boolean() else None
    f = node.fields(("against", "min confidence", "judge"))
    against = _resolve_model(f["against"], models, tier_names, tiers) if "against" in f else (
        tiers[-1].model
    )
    conf = f["min confidence"].number(low=0, high=1) if "min confidence" in f else 0.0
    judge = _resolve_model(f["judge"], models, tier_names, tiers) if "judge" in f else None
    return RaceSpec(against=against, min_confidence=conf, judge=judge)


def _gates(node: Node) -> tuple[GateSpec, ...]:
    gates: list[GateSpec] = []
    for item in node.sequence():
        if item.is_mapping():
            entries = list(item.items())
            if len(entries) != 1:
                item.fail("a gate with settings is one key, e.g. {regex: '^[A-D]$'}")
            name, settings = entries[0]
            gates.append(GateSpec(name, MappingProxyType(_plain(settings))))
        else:
            gates.append(GateSpec(item.text()))
    return tuple(gates)


def _plain(node: Node) -> dict[str, Any]:
    if not node.is_mapping():
        return {"value": _scalar(node)}
    return {key.replace(" ", "_"): _scalar(value) for key, value in node.items()}


def _scalar(node: Node) -> Any:
    if node.is_sequence():
        return [_scalar(item) for item in node.sequence()]
    if node.is_mapping():
        return _plain(node)
    kind = node.kind
    if kind == "a number":
        return node.number()
    if kind == "true/false":
        return node.boolean()
    return node.text()


def _classify(node: Node, context: dict[str, Any]) -> tuple[ClassifyRule, ...]:
    rules: list[ClassifyRule] = []
    for item in node.sequence():
        f = item.fields(("as", "when", "keywords", "pattern", "system says"), required=("as",))
        if len(f) == 1:
            item.fail("a rule needs 'when', 'keywords', 'pattern' or 'system says' besides 'as'")
        pattern = None
        if "pattern" in f:
            try:
                pattern = re.compile(f["pattern"].text())
            except re.error as exc:
                f["pattern"].fail(f"not a valid regular expression: {exc}")
        rules.append(ClassifyRule(
            task=f["as"].one_of(context["tasks"]),
            line=item.line,
            condition=_condition(f["when"], context) if "when" in f else None,
            keywords=tuple(k.lower() for k in f["keywords"].text_list()) if "keywords" in f
            else (),
            pattern=pattern,
            system_markers=tuple(k.lower() for k in f["system says"].text_list())
            if "system says" in f else (),
        ))
    return tuple(rules)


def _condition(node: Node, context: dict[str, Any]) -> Any:
    try:
        return compile_condition(node.text(), **context)
    except ConditionError as exc:
        node.fail(exc.problem)


def _adjust(
    node: Node, context: dict[str, Any], tier_names: tuple[str, ...]
) -> tuple[AdjustRule, ...]:
    rules: list[AdjustRule] = []
    for item in node.sequence():
        f = item.fields(("when", *ADJUST_ACTIONS, "because"), required=("when",))
        actions = [k for k in f if k in ADJUST_ACTIONS]
        if len(actions) != 1:
            item.fail(f"a rule takes exactly one of: {', '.join(ADJUST_ACTIONS)}")
        key = actions[0]
        action = ADJUST_ACTIONS[key]
        tier, steps = None, 1
        if action in ("up", "down"):
            steps = f[key].integer(low=1)
        else:
            tier = f[key].one_of(tier_names)
        rules.append(AdjustRule(
            condition=_condition(f["when"], context),
            action=action, line=item.line, tier=tier, steps=steps,
            because=f["because"].text() if "because" in f else None,
        ))
    return tuple(rules)


def _classifier(node: Node) -> ClassifierSettings:
    if not node.is_mapping():
        return ClassifierSettings(enabled=node.boolean())
    f = node.fields(("enabled", "min confidence", "model file", "use", "options"))
    return ClassifierSettings(
        enabled=f["enabled"].boolean() if "enabled" in f else True,
        min_confidence=f["min confidence"].number(low=0, high=1) if "min confidence" in f
        else 0.5,
        model_file=f["model file"].text() if "model file" in f else None,
        use=_registered(f["use"], CLASSIFIERS) if "use" in f else "linear",
        options=_options(f["options"]) if "options" in f else MappingProxyType({}),
        line=node.line,
    )


def _shared_state(node: Node) -> str:
    """`shared state: {when down: fail open | fail closed}` (Redis, when the gateway has it)."""
    f = node.fields(("when down",))
    return f["when down"].one_of(("fail open", "fail closed")) if "when down" in f \
        else "fail open"


def _calling(node: Node) -> CallingSettings:
    f = node.fields(("timeouts", "retries", "backoff", "circuit breaker", "hedge",
                     "rescue streams", "deadline", "hold for refusal"))
    values: dict[str, Any] = {}
    if "deadline" in f:
        values["deadline_s"] = _positive_seconds(f["deadline"])
    if "timeouts" in f:
        t = f["timeouts"].fields(("connect", "first token", "total", "stall"))
        for key, attr in (("connect", "connect_timeout_s"), ("first token",
                          "first_token_timeout_s"), ("total", "total_timeout_s"),
                          ("stall", "stall_timeout_s")):
            if key in t:
                values[attr] = t[key].seconds()
    if "rescue streams" in f:
        values["rescue_streams"] = f["rescue streams"].boolean()
    if "hold for refusal" in f:
        values["refusal_hold"] = _refusal_hold(f["hold for refusal"])
    if "retries" in f:
        values["retries"] = f["retries"].integer(low=0)
    if "backoff" in f:
        b = f["backoff"].fields(("first", "max"))
        if "first" in b:
            values["backoff_s"] = b["first"].seconds()
        if "max" in b:
            values["backoff_max_s"] = b["max"].seconds()
    if "circuit breaker" in f:
        c = f["circuit breaker"].fields(("failures", "cool down"))
        if "failures" in c:
            values["breaker_failures"] = c["failures"].integer(low=1)
        if "cool down" in c:
            values["breaker_cooldown_s"] = c["cool down"].seconds()
    if "hedge" in f:
        h = f["hedge"]
        if h.is_mapping():
            hf = h.fields(("after", "min samples"))
            values["hedge"] = True
            if "after" in hf:
                after = hf["after"].text()
                match = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", after)
                if not match:
                    hf["after"].fail(f"expected a percentile such as p95, got {after!r}")
                values["hedge_quantile"] = float(match.group(1)) / 100
            if "min samples" in hf:
                values["hedge_min_samples"] = hf["min samples"].integer(low=1)
        else:
            values["hedge"] = h.boolean()
    return CallingSettings(**values)


def _refusal_hold(node: Node) -> RefusalHold:
    """`hold for refusal: {chars: 40, at most: 300ms, release early: true}` (any key), or
    `false` (no hold)."""
    if not node.is_mapping():
        return RefusalHold() if node.boolean() else RefusalHold(chars=0)
    f = node.fields(("chars", "at most", "release early"))
    default = RefusalHold()
    return RefusalHold(
        chars=f["chars"].integer(low=0) if "chars" in f else default.chars,
        at_most_s=f["at most"].seconds() if "at most" in f else default.at_most_s,
        release_early=f["release early"].boolean() if "release early" in f
        else default.release_early)


def _positive_seconds(node: Node) -> float:
    """A duration that must be more than nothing (a deadline, a retention horizon)."""
    seconds = node.seconds()
    if seconds <= 0:
        node.fail("expected a duration above zero, such as 30s or 30d")
    return seconds
