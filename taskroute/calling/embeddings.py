"""Embeddings: passed to the embedding model the policy names (never routed, no gates, no
chain), but logged, priced and traced like every request — one attempt, its input tokens at
the model's input price, its entry in the store with the `embeddings` API, and (tracing on) an
`embeddings` request span with the call's span under it, whose context the upstream is sent."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskroute.decision import Decision
from taskroute.exceptions import (
    ConfigError,
    InvalidRequest,
    TaskrouteError,
    UnknownModel,
)
from taskroute.policy.model import EmbeddingSpec, Policy
from taskroute.providers.base import Embedder, Timeouts
from taskroute.records import CLIENT_CLOSED, Attempt, RequestContext, RouteRecord
from taskroute.request import ChatRequest
from taskroute.response import new_id
from taskroute.signals import estimate_tokens, measure
from taskroute.store.base import LogEntry
from taskroute.tracing.attributes import EMBEDDINGS
from taskroute.tracing.propagation import outgoing

if TYPE_CHECKING:
    from taskroute.calling.engine import CallEngine

ROUTING_NAMES = frozenset({"", "auto", "taskroute", "taskroute/auto"})


def embedding_model(policy: Policy, name: str) -> EmbeddingSpec:
    """The policy's embedding model a request's `model` names: its id, its upstream name, an
    alias, or `auto` for the first one."""
    models = policy.embeddings
    if not models:
        raise InvalidRequest("this gateway's policy names no embedding model (add an "
                             "'embeddings:' section)", param="model")
    if name in ROUTING_NAMES:
        return next(iter(models.values()))
    target = policy.aliases.get(name, name)
    if target in models:
        return models[target]
    by_name = [spec for spec in models.values() if spec.upstream_name == name]
    if len(by_name) == 1:
        return by_name[0]
    raise UnknownModel(name, [*models, "auto"])


def texts_of(value: Any) -> list[str]:
    """The input's texts (token arrays counted by their length), refusing what OpenAI does."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) and v for v in value):
            return list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return ["x" * 4 * len(value)]
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return ["x" * 4 * len(v) for v in value]
    raise InvalidRequest("'input' must be a non-empty string, a list of non-empty strings, or "
                         "token arrays", param="input")


MAX_DIMENSIONS = 65_536  # far above any embedding model's (OpenAI's largest: 3,072)


def check_dimensions(value: Any) -> None:
    """`dimensions`, when given, is a whole number an embedding can have."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise InvalidRequest(f"'dimensions' must be a whole number from 1 to {MAX_DIMENSIONS:,}",
                             param="dimensions")


async def embed(
    engine: CallEngine, body: Mapping[str, Any], context: RequestContext
) -> tuple[dict[str, Any], RouteRecord]:
    """Call the named embedding model once; the answer as the provider gave it (its `model`
    the policy's id) and the logged record. A failure is raised with `exc.record` set."""
    policy = engine.policy
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("'model' is required", param="model")
    spec = embedding_model(policy, body["model"])
    texts = texts_of(body.get("input"))
    check_dimensions(body.get("dimensions"))
    provider = engine.wiring.providers.get(spec.provider)
    if not isinstance(provider, Embedder):
        raise ConfigError(f"the provider {spec.provider!r} of {spec.id} has no embeddings "
                          "endpoint (OpenAI-compatible providers do)")
    prompt = ChatRequest.from_prompt("\n".join(texts), model=body["model"])
    estimate = sum(estimate_tokens(t) for t in texts)
    decision = Decision(
        task="embedding", task_source="caller", task_confidence=None, signals=measure(prompt),
        tier="embedding", model=spec.id, chain=(spec.id,),
        estimated_cost_usd=round(spec.price.cost(estimate, 0), 8),
        reasons=(f"An embeddings request goes to {spec.id}, as the policy names it; it is "
                 "not routed.",), policy=policy.name, routed=False)
    record = RouteRecord(context.request_id or new_id("req"), decision, started_at=time.time())
    span = engine.request_span(prompt, decision, context, operation=EMBEDDINGS)
    call = None if span is None else span.attempt(spec.id, spec.id, "first")
    c = policy.calling
    t0 = time.perf_counter()
    error: BaseException | None = None
    answer: dict[str, Any] = {}
    try:
        with outgoing(call):
            answer = await provider.embed({k: v for k, v in body.items() if k != "model"},
                                          model=spec.upstream_name, timeouts=Timeouts(
                                              c.connect_timeout_s, c.first_token_timeout_s,
                                              c.total_timeout_s))
    except BaseException as exc:
        error = exc
    latency = round(time.perf_counter() - t0, 6)
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    tokens = int(usage.get("prompt_tokens") or 0) if error is None else 0
    attempt = Attempt(
        model=spec.id, deployment=spec.id, role="first",
        status="ok" if error is None else "error", started_at=record.started_at,
        latency_s=latency, input_tokens=tokens, cost_usd=round(spec.price.cost(tokens, 0), 10),
        error=None if error is None else _describe(error))
    record.attempts.append(attempt)
    record.latency_s = latency
    if error is None:
        record.answered(spec.id, spec.id)
        answer["model"] = spec.id
    else:
        record.status, record.error = "error", _describe(error)
        if isinstance(error, TaskrouteError):
            error.record = record
    if call is not None:
        call.end(attempt, None)
    if span is not None:  # never the input or the vectors: bulk, and not a conversation
        span.end(record, answer=None, error=error)
    _log(engine, record, context, body, prompt, error)
    if error is not None:
        raise error
    return answer, record


def _describe(error: BaseException) -> str:
    if not isinstance(error, Exception):
        return CLIENT_CLOSED
    return f"{type(error).__name__}: {error}"


def _log(
    engine: CallEngine, record: RouteRecord, context: RequestContext, body: Mapping[str, Any],
    prompt: ChatRequest, error: BaseException | None,
) -> None:
    if engine.spend is not None:
        engine.spend.settle(None, record.total_cost_usd, user=_user(body), key=context.key_id)
    if engine.store is None:
        return
    status = 200 if error is None else int(getattr(error, "status_code", 499))
    engine.store.add(LogEntry(
        record=record, api="embeddings", http_status=status, user=_user(body),
        api_key_id=context.key_id, variant=context.variant,
        prompt=prompt.all_text if engine.policy.log_content else None))


def _user(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    return user if isinstance(user, str) else None
