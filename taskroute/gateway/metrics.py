"""Prometheus metrics for the gateway, on a registry of its own (one per app).

Every routed request is counted by task class, tier and the model that answered; latency and
first-token histograms, cost, escalations, gate failures and upstream errors alongside.
"""

from __future__ import annotations

from typing import Any

from taskroute.calling.records import RouteRecord

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROUTE = ("task", "tier", "model")


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

    def observe(self, record: RouteRecord, api: str) -> None:
        decision = record.decision
        task, tier = decision.task, decision.tier
        model = record.answered_by or decision.model
        self.requests.labels(task, tier, model, api, record.status).inc()
        self.latency.labels(task, tier, model).observe(record.latency_s)
        if record.first_token_s is not None:
            self.first_token.labels(task, tier, model).observe(record.first_token_s)
        cost = record.total_cost_usd
        if cost:
            self.cost.labels(task, tier, model).inc(cost)
        if record.escalated:
            self.escalations.labels(task, tier, model).inc()
        for attempt in record.attempts:
            if attempt.status == "error":
                self.upstream_errors.labels(task, tier, attempt.model).inc()
            for verdict in attempt.verdicts:
                if not verdict.passed:
                    self.gate_failures.labels(task, tier, attempt.model, verdict.gate).inc()

    def response(self, endpoint: str, status: int) -> None:
        self.http.labels(endpoint, str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        body: bytes = self._prom.generate_latest(self.registry)
        return body, "text/plain; version=0.0.4"
