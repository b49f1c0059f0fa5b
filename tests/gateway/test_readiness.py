"""`/readyz` is not ready when no deployment can be called: every provider lacks its key."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from taskroute.policy.model import Policy
from tests.gateway.conftest import StartGateway

UNSET = "TASKROUTE_TEST_KEY_THAT_IS_NOT_SET"


def keyed(policy: Policy) -> Policy:
    providers = {name: replace(spec, simulated=False, api_key_env=UNSET)
                 for name, spec in policy.providers.items()}
    return replace(policy, providers=providers)


async def test_not_ready_without_any_provider_key(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    gw = await start_gateway(edit_policy=keyed)
    status, _, body = await gw.request("GET", "/readyz")
    assert status == 503
    assert json.loads(body)["reason"] == f"no provider key is set: set {UNSET}"
    monkeypatch.setenv(UNSET, "sk-test")
    status, _, body = await gw.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
