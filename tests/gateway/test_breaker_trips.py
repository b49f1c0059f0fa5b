"""The breakers' trips outlive the gateway: one restarted on its SQLite log shows, in
/v1/taskroute/breakers, the trips from before it — the closing too — while its breakers start
closed (the history is not the state)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from taskroute.policy.model import Policy
from tests.gateway.conftest import RunningGateway, StartGateway

CHAT = {"model": "taskroute/summarization",
        "messages": [{"role": "user", "content": "Summarize this, please."}]}
FAILING = "gpt-4.1-mini"  # the summarization class's first pick


def quick_to_trip(policy: Policy) -> Policy:
    return replace(policy, calling=replace(policy.calling, breaker_failures=1,
                                           breaker_cooldown_s=0.2, retries=0))


async def breakers(gw: RunningGateway) -> Any:
    status, _, raw = await gw.request("GET", "/v1/taskroute/breakers")
    assert status == 200, raw
    return json.loads(raw)


async def test_a_gateway_restarted_on_its_log_shows_the_trips_from_before(
    start_gateway: StartGateway,
) -> None:
    first = await start_gateway(edit_policy=quick_to_trip)
    first.upstream.fail(FAILING, 503)
    assert (await first.request("POST", "/v1/chat/completions", json=CHAT))[0] == 200
    await asyncio.sleep(0.3)             # the cool-down passes; the next call is the probe
    first.upstream.answer_normally(FAILING)
    assert (await first.request("POST", "/v1/chat/completions", json=CHAT))[0] == 200
    (trip,) = (await breakers(first))["trips"]
    assert trip["deployment"].endswith(FAILING) and "503" in trip["reason"]
    assert trip["closed_at"] is not None and trip["by"] == "here" and trip["replica"]
    await first.stop()

    again = await start_gateway(edit_policy=quick_to_trip, db=first.db)
    report = await breakers(again)
    assert report["persisted"] is True
    assert report["trips"] == [trip]     # this process's name: still "here"
    assert report["open"] == 0           # its breakers are its own, and closed
    assert [r[0] for r in await again.log_rows("SELECT id FROM breaker_trips")] == [trip["id"]]
