"""The stand-in's control endpoint: another process (a bench) sets a model's behaviour and
profile over HTTP, and only when the stand-in was started with it."""

from __future__ import annotations

from typing import Any

import aiohttp

from taskroute.providers.simulated import SimulatedUpstream


async def _post(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.text()


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
            **fields}


async def test_a_behaviour_set_over_http_is_obeyed_until_reset() -> None:
    async with SimulatedUpstream(control=True) as upstream:
        chat = upstream.base_url + "/chat/completions"
        assert (await _post(upstream.url + "/_sim/behave",
                            {"model": "m", "status": 429, "retry_after": "3"}))[0] == 200
        assert upstream.behaviour("m").status == 429
        assert (await _post(chat, _chat()))[0] == 429
        assert (await _post(upstream.url + "/_sim/reset"))[0] == 200
        assert (await _post(chat, _chat()))[0] == 200


async def test_a_profile_set_over_http_gives_the_context_length_error() -> None:
    async with SimulatedUpstream(control=True) as upstream:
        await _post(upstream.url + "/_sim/profile", {"model": "m", "context_window": 10})
        status, body = await _post(upstream.base_url + "/chat/completions", _chat())
        assert status == 400 and "context" in body
        await _post(upstream.url + "/_sim/profile", {"model": "m"})  # back to the default
        assert (await _post(upstream.base_url + "/chat/completions", _chat()))[0] == 200


async def test_unknown_fields_are_refused_and_nothing_changes() -> None:
    async with SimulatedUpstream(control=True) as upstream:
        status, body = await _post(upstream.url + "/_sim/behave", {"model": "m", "statu": 500})
        assert status == 400 and "statu" in body
        assert (await _post(upstream.url + "/_sim/behave", {"status": 500}))[0] == 400
        assert upstream.behaviour("m").status is None


async def test_there_is_no_control_endpoint_unless_asked_for(
    simulated_upstream: SimulatedUpstream,
) -> None:
    status, _ = await _post(simulated_upstream.url + "/_sim/behave", {"model": "m",
                                                                     "status": 500})
    assert status in (404, 405)
    assert simulated_upstream.behaviour("m").status is None
