"""Prometheus metrics for the gateway, on a registry of its own (one per app).

Every routed request is counted by task class, tier and the model that answered; latency and
first-token histograms, cost, escalations, gate failures and upstream errors alongside; races
(who won, which side was cancelled) and hedges (fired, won) from each request's attempts;
reloads by outcome. Read at each scrape (`watch_*`): every deployment's circuit breaker, the
budgets' headroom per scope, the log writer's queue depth (and each commit's time, observed by
the writer as it happens). docs/grafana-taskroute.json charts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from taskroute.records import RouteRecord
from taskroute.store.base import WatchedWriter

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTE = ("task", "tier", "model")
BREAKER_STATES = ("closed", "half_open", "open")
# (scope, id) → (limit, headroom) in USD; `id` is "" for the day's scope
Headroom = Mapping[tuple[str, str], tuple[float, float]]


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - depends on the install
        from taskroute.exceptions import ConfigError

        raise ConfigError(
            "the gateway needs prometheus-client: pip install 'taskroute[gateway]'"
        ) from None
    return prometheus_client


class GatewayMetrics:
    def __init__(self) -> None:
        prom = _prometheus()
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter(
            "taskroute_requests", "Routed requests, by route and outcome",
            [*ROUTE, "api", "status"], registry=r)
        self.latency = prom.Histogram(
            "taskroute_request_latency_seconds", "Time from request to the last byte of the answer",
            ROUTE, buckets=_LATENCY_BUCKETS, registry=r)
        self.first_token = prom.Histogram(
            "taskroute_first_token_seconds", "Time from request to the answer's first token",
            ROUTE, buckets=_LATENCY_BUCKETS, registry=r)
        self.cost = prom.Counter(
            "taskroute_cost_usd", "Spend in USD, rejected attempts included", ROUTE, registry=r)
        self.escalations = prom.Counter(
            "taskroute_escalations", "Requests answered by a model past the first pick",
            ROUTE, registry=r)
        self.gate_failures = prom.Counter(
            "taskroute_gate_failures", "Answers a quality gate rejected",
            [*ROUTE, "gate"], registry=r)
        self.upstream_errors = prom.Counter(
            "taskroute_upstream_errors", "Failed calls to a provider", ROUTE, registry=r)
        self.http = prom.Counter(
            "taskroute_http_responses", "Every HTTP response, by endpoint and status",
            ["endpoint", "status"], registry=r)
        self.reloads = prom.Counter(
            "taskroute_reloads", "Policy reloads (POST reload or SIGHUP), by outcome",
            ["outcome"], registry=r)
        self.races = prom.Counter(
            "taskroute_races", "Raced requests by the side whose answer was served "
            "(cheap, strong, or neither: escalated past both)", ["task", "winner"], registry=r)
        self.race_cancellations = prom.Counter(
            "taskroute_race_cancellations", "Raced calls cancelled because the other side won",
            ["task", "side"], registry=r)
        self.hedges = prom.Counter(
            "taskroute_hedges", "Hedged calls sent (a deployment slower than its recent p95)",
            ["task", "model"], registry=r)
        self.hedges_won = prom.Counter(
            "taskroute_hedges_won", "Hedged calls whose answer was served",
            ["task", "model"], registry=r)
        for outcome in ("ok", "refused"):
            self.reloads.labels(outcome)  # both shown from the start, at 0
        # Each label set's child, bound once (prometheus' own `labels()` is a locked lookup).
        self._requests: dict[tuple[str, ...], Any] = {}
        self._routes: dict[tuple[str, ...], _Route] = {}
        self._http: dict[tuple[str, int], Any] = {}

    def observe(self, record: RouteRecord, api: str) -> None:
        decision = record.decision
        task, tier = decision.task, decision.tier
        model = record.answered_by or decision.model
        key = (task, tier, model, api, record.status)
        requests = self._requests.get(key)
        if requests is None:
            requests = self._requests[key] = self.requests.labels(*key)
        requests.inc()
        route = self._routes.get(key[:3])
        if route is None:
            route = self._routes[key[:3]] = _Route(self, task, tier, model)
        route.latency.observe(record.latency_s)
        if record.first_token_s is not None:
            route.first_token.observe(record.first_token_s)
        cost = record.total_cost_usd
        if cost:
            route.cost.inc(cost)
        if record.escalated:
            route.escalations.inc()
        raced = False
        for attempt in record.attempts:
            role, status = attempt.role, attempt.status
            if status == "error":
                self.upstream_errors.labels(task, tier, attempt.model).inc()
            for verdict in attempt.verdicts:
                if not verdict.passed:
                    self.gate_failures.labels(task, tier, attempt.model, verdict.gate).inc()
            if role == "race":
                raced = True
            elif role == "hedge":
                self.hedges.labels(task, attempt.model).inc()
                if status == "ok" and attempt.deployment == record.answered_by:
                    self.hedges_won.labels(task, attempt.model).inc()
        if raced:
            self._race(record, task)

    def _race(self, record: RouteRecord, task: str) -> None:
        self.races.labels(task, record.race_winner or "neither").inc()
        for attempt in record.attempts:
            if attempt.status == "cancelled" and attempt.role in ("first", "race"):
                side = "strong" if attempt.role == "race" else "cheap"
                self.race_cancellations.labels(task, side).inc()

    def watch_shared(self, shared: object) -> None:
        """Count what the shared state (Redis) did while it was down: requests served on this
        process's own counters (fail open), refused (fail closed)."""
        prom, r = self._prom, self.registry
        for name, attr, what in (
                ("taskroute_shared_state_fallbacks", "fallbacks",
                 "Requests served on this process's counters while Redis was down (fail open)"),
                ("taskroute_shared_state_refusals", "refusals",
                 "Requests refused with 503 while Redis was down (fail closed)")):
            if hasattr(shared, attr):
                prom.Gauge(name, what, registry=r).set_function(
                    lambda a=attr: float(getattr(shared, a)))

    def watch_breakers(self, states: Callable[[], Mapping[str, str]]) -> None:
        """`taskroute_breaker_state{deployment, state}`: 1 for each deployment's current state
        (`states()`: deployment → closed, half_open or open), 0 for the others."""

        def collect() -> Iterator[Any]:
            family = self._prom.metrics_core.GaugeMetricFamily(
                "taskroute_breaker_state", "Each deployment's circuit breaker: 1 for its state "
                "now (closed, half_open, open)", labels=["deployment", "state"])
            for deployment, now in sorted(states().items()):
                for state in BREAKER_STATES:
                    family.add_metric([deployment, state], 1.0 if state == now else 0.0)
            yield family

        self.registry.register(_Collector(collect))

    def watch_budgets(self, headroom: Callable[[], Headroom]) -> None:
        """`taskroute_budget_headroom_usd` and `taskroute_budget_limit_usd` per scope (day,
        user, key) and id, as `headroom()` reads them at each scrape."""

        def collect() -> Iterator[Any]:
            gauge = self._prom.metrics_core.GaugeMetricFamily
            left = gauge("taskroute_budget_headroom_usd", "What today's budget still allows, "
                         "USD (holds of requests in flight count as spent)",
                         labels=["scope", "id"])
            limit = gauge("taskroute_budget_limit_usd", "Today's budget, USD",
                          labels=["scope", "id"])
            for (scope, ident), (cap, room) in sorted(headroom().items()):
                left.add_metric([scope, ident], room)
                limit.add_metric([scope, ident], cap)
            yield left
            yield limit

        self.registry.register(_Collector(collect))

    def watch_store(self, store: object) -> None:
        """The log writer's queue depth and each commit's time, when the store tells them."""
        if not isinstance(store, WatchedWriter):
            return
        prom, r = self._prom, self.registry
        prom.Gauge("taskroute_log_queue_depth", "Log items added and not yet handed to the "
                   "database", registry=r).set_function(lambda: float(store.queue_depth()))
        seconds = prom.Histogram(
            "taskroute_log_write_seconds", "Time the log writer took to write one batch",
            buckets=_WRITE_BUCKETS, registry=r)
        store.on_commit(seconds.observe)

    def response(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http.labels(endpoint, str(status))
        child.inc()

    def render(self) -> tuple[bytes, str]:
        body: bytes = self._prom.generate_latest(self.registry)
        return body, "text/plain; version=0.0.4"


class _Route:
    """One route's (task, tier, model) children of the per-route metrics."""

    __slots__ = ("cost", "escalations", "first_token", "latency")

    def __init__(self, metrics: GatewayMetrics, task: str, tier: str, model: str) -> None:
        self.latency = metrics.latency.labels(task, tier, model)
        self.first_token = metrics.first_token.labels(task, tier, model)
        self.cost = metrics.cost.labels(task, tier, model)
        self.escalations = metrics.escalations.labels(task, tier, model)


class _Collector:
    """A collector read at each scrape (prometheus' registry calls `collect()`)."""

    def __init__(self, collect: Callable[[], Iterator[Any]]) -> None:
        self.collect = collect

    def describe(self) -> list[Any]:
        return []  # no eager collect when registered
