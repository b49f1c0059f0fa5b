"""Models, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import json

from taskroute.exceptions import Secret
from taskroute.gateway.settings import GatewaySettings
from tests.gateway.conftest import RunningGateway, StartGateway


async def test_models_lists_routing_names_task_classes_and_policy_models(
    gateway: RunningGateway,
) -> None:
    status, _, body = await gateway.request("GET", "/v1/models")
    assert status == 200
    data = json.loads(body)
    ids = [m["id"] for m in data["data"]]
    assert data["object"] == "list"
    assert {"auto", "taskroute", "taskroute/coding", "openai/gpt-4.1-mini"} <= set(ids)
    assert all(m["object"] == "model" for m in data["data"])


async def test_health_and_readiness(gateway: RunningGateway) -> None:
    assert (await gateway.request("GET", "/healthz"))[0] == 200
    status, _, body = await gateway.request("GET", "/readyz")
    assert status == 200
    assert json.loads(body)["status"] == "ready"


async def test_health_stays_open_when_keys_are_required(start_gateway: StartGateway) -> None:
    gw = await start_gateway(GatewaySettings(api_keys=(Secret("sk-gw-1"),)))
    assert (await gw.request("GET", "/healthz"))[0] == 200
    assert (await gw.request("GET", "/readyz"))[0] == 200
    assert (await gw.request("GET", "/v1/models"))[0] == 401
    assert (await gw.request("GET", "/metrics"))[0] == 401


async def test_openapi_document_is_valid_openapi_3(gateway: RunningGateway) -> None:
    from openapi_spec_validator import validate

    status, headers, body = await gateway.request("GET", "/openapi.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    validate(document)
    assert {"/v1/chat/completions", "/v1/messages", "/v1/models", "/healthz", "/readyz",
            "/metrics", "/openapi.json", "/v1/taskroute/stats", "/v1/taskroute/timeseries",
            "/v1/taskroute/ab", "/v1/taskroute/feedback", "/v1/taskroute/reload",
            "/v1/taskroute/shadow", "/v1/taskroute/breakers", "/dashboard", "/dashboard/signin",
            "/dashboard/signout", "/v1/responses",
            "/v1/messages/count_tokens", "/v1/embeddings"} == set(document["paths"])
    served = {r.resource.canonical for r in gateway.app.router.routes() if r.resource}
    assert served <= set(document["paths"])  # every endpoint the gateway serves is described


async def test_metrics_are_prometheus_text(gateway: RunningGateway) -> None:
    await gateway.request("GET", "/v1/models")
    status, headers, body = await gateway.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert "# TYPE taskroute_requests_total counter" in text
    assert "# TYPE taskroute_request_latency_seconds histogram" in text
    assert 'taskroute_http_responses_total{endpoint="/v1/models",status="200"} 1.0' in text


async def test_metrics_count_routed_requests_by_task_tier_and_model(
    gateway: RunningGateway,
) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(2):
        assert (await gateway.request("POST", "/v1/chat/completions", json=body))[0] == 200
    from prometheus_client.parser import text_string_to_metric_families

    text = (await gateway.request("GET", "/metrics"))[2].decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    route = (("model", "openai/gpt-4.1-mini"), ("task", "chat"), ("tier", "fast"))
    ok = tuple(sorted((*route, ("api", "openai"), ("status", "ok"))))
    assert samples[("taskroute_requests_total", ok)] == 2
    assert samples[("taskroute_request_latency_seconds_count", route)] == 2
    assert samples[("taskroute_first_token_seconds_count", route)] == 2
    assert samples[("taskroute_cost_usd_total", route)] > 0
