"""W3C trace context without OpenTelemetry: what is read from a client, what is handed on, and
that the core never imports OpenTelemetry (only taskroute/tracing/otel.py does, and only
when tracing is on)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import taskroute
from taskroute.tracing import enabled, from_environment
from taskroute.tracing.propagation import client_trace
from tests.gateway.conftest import RunningGateway, StartGateway
from tests.tracing.common import JUDGE_UPSTREAM, TRACEPARENT, ask, judged_chat

ROOT = Path(taskroute.__file__).parent


def test_a_valid_traceparent_is_read_and_a_malformed_one_ignored() -> None:
    assert client_trace({"traceparent": TRACEPARENT.upper(), "tracestate": "a=1"}) == (
        TRACEPARENT, "a=1")
    for bad in ("", "01-" + TRACEPARENT[3:], "00-" + "0" * 32 + TRACEPARENT[35:],
                TRACEPARENT[:-3], "00-xyz"):
        assert client_trace({"traceparent": bad, "tracestate": "a=1"}) == (None, None)


def test_tracing_is_on_only_when_the_environment_asks() -> None:
    assert not enabled({})
    assert enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert enabled({"OTEL_TRACES_EXPORTER": "otlp"})
    assert enabled({"TASKROUTE_TRACING": "on"})
    assert not enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "TASKROUTE_TRACING": "off"})
    assert not enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
                        "OTEL_TRACES_EXPORTER": "none"})
    assert from_environment({}) is None


def test_only_the_otel_module_imports_opentelemetry() -> None:
    importers = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "opentelemetry" for n in names):
                importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"tracing/otel.py"}


def test_the_core_serves_without_opentelemetry_installed(tmp_path: Path) -> None:
    """OpenTelemetry made unimportable: the gateway app builds, a request is routed and
    answered, and tracing asked for by the environment is off with a warning naming the
    extra."""
    code = """
import asyncio, logging, sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
from taskroute.demo.policy import simulated_policy
from taskroute.gateway.app import create_app
from taskroute.policy.loader import load_default_policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from taskroute.tracing import from_environment
logging.basicConfig(level=logging.WARNING)
assert from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) is None

async def main():
    async with SimulatedUpstream() as up:
        router = Router(simulated_policy(load_default_policy(), up), classifier=False)
        create_app(router)
        result = await router.complete({"messages": [{"role": "user", "content": "hi"}]})
        await router.aclose()
        print("answered:", bool(result.response.text))

asyncio.run(main())
print("otel imported:", any(m.startswith("opentelemetry") and sys.modules[m] is not None
                            for m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT.parent), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "answered: True" in done.stdout and "otel imported: False" in done.stdout
    assert "pip install 'taskroute[otel]'" in done.stderr


async def test_with_tracing_off_the_clients_trace_context_is_handed_on_unchanged(
    gateway: RunningGateway,
) -> None:
    await ask(gateway, "openai/gpt-4.1-mini", traceparent=TRACEPARENT, tracestate="k=v")
    sent = gateway.upstream.last_headers["gpt-4.1-mini"]
    assert sent["traceparent"] == TRACEPARENT and sent["tracestate"] == "k=v"
    await ask(gateway, "openai/gpt-4.1-mini")
    assert "traceparent" not in gateway.upstream.last_headers["gpt-4.1-mini"]


async def test_with_tracing_off_embeddings_and_a_judge_hand_the_clients_trace_on(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(edit_policy=judged_chat)
    upstream = gateway.upstream
    headers = {"traceparent": TRACEPARENT, "Content-Type": "application/json"}
    status, _, _ = await gateway.request("POST", "/v1/embeddings", headers=headers,
                                         json={"model": "auto", "input": "hello"})
    assert status == 200
    assert upstream.last_headers["text-embedding-3-small"]["traceparent"] == TRACEPARENT
    await ask(gateway, "taskroute/chat", traceparent=TRACEPARENT)
    assert upstream.last_headers[JUDGE_UPSTREAM]["traceparent"] == TRACEPARENT
    await ask(gateway, "taskroute/chat")
    assert "traceparent" not in upstream.last_headers[JUDGE_UPSTREAM]
