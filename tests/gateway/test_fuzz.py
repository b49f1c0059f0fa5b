"""Property-based requests against the gateway's own /openapi.json (schemathesis): no 5xx and no
hang, on every endpoint, with valid and invalid bodies. Bounded: a fixed number of examples per
operation, each call with a timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from taskroute.demo.policy import simulated_policy  # noqa: E402
from taskroute.gateway.app import create_app  # noqa: E402
from taskroute.gateway.server import listening_url  # noqa: E402
from taskroute.gateway.settings import GatewaySettings  # noqa: E402
from taskroute.policy.loader import load_default_policy  # noqa: E402
from taskroute.providers.simulated import SimulatedUpstream  # noqa: E402
from taskroute.router import Router  # noqa: E402


def serve_in_thread(settings: GatewaySettings) -> Iterator[str]:
    """The gateway in front of the simulated upstream, on a loop of its own (schemathesis calls
    are synchronous)."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> None:
        upstream = SimulatedUpstream()
        await upstream.start()
        router = Router(simulated_policy(load_default_policy(), upstream), classifier=False)
        runner = web.AppRunner(create_app(router, settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box.update(url=listening_url(site, "127.0.0.1"), runner=runner, upstream=upstream)

    def run() -> None:
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(15)
    yield str(box["url"])

    async def stop() -> None:
        runner = box["runner"]
        upstream = box["upstream"]
        assert isinstance(runner, web.AppRunner) and isinstance(upstream, SimulatedUpstream)
        await runner.cleanup()
        await upstream.stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(15)
    loop.close()


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    yield from serve_in_thread(GatewaySettings(max_body_bytes=64 * 1024))


@pytest.mark.timeout(240)
def test_no_server_errors_and_no_hangs(gateway_url: str) -> None:
    """Every operation of /openapi.json, fuzzed with generated bodies, headers and paths."""
    from hypothesis import given

    api = schemathesis.openapi.from_url(gateway_url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 6  # schemathesis leaves out the document itself
    failures: list[str] = []
    # valid requests everywhere, and deliberately invalid bodies where there is a body
    runs = [(o, schemathesis.GenerationMode.POSITIVE) for o in operations] + [
        (o, schemathesis.GenerationMode.NEGATIVE) for o in operations
        if o.method.upper() == "POST"]
    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(base_url=gateway_url, timeout=10)  # raises on a hang
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} "
                                f"{response.text[:200]} for {case.body!r:.200}")

        check()
    assert not failures, "\n".join(failures[:10])
