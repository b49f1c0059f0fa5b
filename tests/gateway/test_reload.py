"""A reload builds the new router off the event loop and swaps it in one step: requests and
streams in flight finish on the router they started with, which is closed after its last one."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from taskroute.demo.policy import simulated_policy_text
from taskroute.gateway.context import GATEWAY
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.loader import default_policy_text, load_policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from tests.gateway.conftest import RunningGateway, StartGateway

ADMIN = {"X-Taskroute-Admin-Key": "sesame"}
# A short drain delay: the old gateway closed a replaced router after it, streams or not.
SETTINGS = GatewaySettings(extra={"admin_keys": ["sesame"]}, shutdown_timeout_s=0.2)


async def reloadable(start_gateway: StartGateway, upstream: SimulatedUpstream,
                     tmp_path: Path, **router_args: Any) -> RunningGateway:
    path = tmp_path / "policy.yaml"
    path.write_text(simulated_policy_text(default_policy_text(), upstream.url),
                    encoding="utf-8")
    return await start_gateway(SETTINGS, edit_policy=lambda _: load_policy(path),
                               **router_args)


async def test_a_stream_in_flight_finishes_normally_across_a_reload(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream, tmp_path: Path
) -> None:
    gw = await reloadable(start_gateway, simulated_upstream, tmp_path)
    old = gw.app[GATEWAY].routers.router
    assert isinstance(old, Router)
    simulated_upstream.behave("gpt-4.1-mini", token_delay_s=0.3)   # seconds of tokens, past
    # the 300 ms the refusal hold may keep the first ones back
    body = {"model": "auto", "stream": True,
            "messages": [{"role": "user", "content": "hello there, how are you today?"}]}
    events: list[bytes] = []
    import aiohttp

    async with aiohttp.ClientSession() as client, client.post(
        gw.url + "/v1/chat/completions", json=body, headers=ADMIN,  # admin may do all
        timeout=aiohttp.ClientTimeout(total=20)) as resp:
        assert resp.status == 200
        events.append(await resp.content.readline())
        status, _, raw = await gw.request("POST", "/v1/taskroute/reload", headers=ADMIN)
        assert status == 200, raw
        assert gw.app[GATEWAY].routers.router is not old      # new requests: the new router
        await asyncio.sleep(0.4)                              # past the old drain delay
        assert old._engine is not None                        # still serving the stream
        async for line in resp.content:
            events.append(line)
    data = [e for e in events if e.startswith(b"data: ")]
    assert data[-1] == b"data: [DONE]\n"
    assert not any(b'"error"' in e for e in data)
    text = "".join(
        (json.loads(e[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for e in data[:-1])
    assert len(text) > 20
    (row,) = await gw.log_rows()
    assert row["status"] == "ok"
    for _ in range(100):                                      # closed after its last stream
        if old._engine is None:
            break
        await asyncio.sleep(0.02)
    assert old._engine is None


async def test_a_reload_loads_the_new_router_off_the_event_loop(
    start_gateway: StartGateway, simulated_upstream: SimulatedUpstream, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("sklearn")
    from taskroute.classify.learned import LinearTaskClassifier
    from taskroute.cli.main import main
    from taskroute.learned.model import LearnedRouter
    from tests.learned.test_policy_learned_router import outcomes

    data = tmp_path / "outcomes.jsonl"
    outcomes(data)
    assert main(["train", str(data), "-o", str(tmp_path / "router.npz"), "--C", "1"]) == 0
    gw = await reloadable(start_gateway, simulated_upstream, tmp_path, classifier=True)
    path = tmp_path / "policy.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    qa = next(i for i, line in enumerate(lines) if line.startswith("  qa:"))
    lines[qa:qa + 1] = [
        "  qa:", "    tier: balanced", "    router:", f"      file: {tmp_path / 'router.npz'}",
        "      models: {cheap: openai/gpt-4.1-mini, strong: openai/gpt-4.1}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    threads: dict[str, int] = {}
    real_load, real_bundled = LearnedRouter.load, LinearTaskClassifier.bundled

    def load(path: Any) -> LearnedRouter:
        threads["learned"] = threading.get_ident()
        return real_load(path)

    def bundled() -> LinearTaskClassifier:
        threads["classifier"] = threading.get_ident()
        return real_bundled()

    monkeypatch.setattr(LearnedRouter, "load", staticmethod(load))
    monkeypatch.setattr(LinearTaskClassifier, "bundled", staticmethod(bundled))
    status, _, raw = await gw.request("POST", "/v1/taskroute/reload", headers=ADMIN)
    assert status == 200, raw
    loop_thread = threading.get_ident()
    assert set(threads) == {"learned", "classifier"}
    assert loop_thread not in threads.values()
    new = gw.app[GATEWAY].routers.router
    assert isinstance(new, Router) and "qa" in new._learned_routers


async def test_reload_needs_no_request_log(
    simulated_upstream: SimulatedUpstream, tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from taskroute.gateway.app import create_app

    path = tmp_path / "policy.yaml"
    path.write_text(simulated_policy_text(default_policy_text(), simulated_upstream.url),
                    encoding="utf-8")
    app = create_app(Router.from_file(path, classifier=False), SETTINGS)   # no store
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.post("/v1/taskroute/reload", headers=ADMIN)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["reloaded"] is True
