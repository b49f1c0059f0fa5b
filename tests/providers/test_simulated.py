"""The simulated upstream itself: the wire formats it speaks and the behaviours it obeys."""

from __future__ import annotations

from typing import Any

import aiohttp

from taskroute.providers.simulated import REFUSAL, ModelProfile, SimulatedUpstream, difficulty


async def _post(url: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        url, json=body, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


def _chat(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **fields}


async def test_answers_deterministically_from_the_prompt(
    simulated_upstream: SimulatedUpstream,
) -> None:
    url = simulated_upstream.base_url + "/chat/completions"
    first = await _post(url, _chat("what is the capital of France"))
    second = await _post(url, _chat("what is the capital of France"))
    assert first[0] == 200
    assert first[1]["choices"][0]["message"] == second[1]["choices"][0]["message"]
    assert "capital of France" in first[1]["choices"][0]["message"]["content"]


async def test_fails_n_times_then_recovers(simulated_upstream: SimulatedUpstream) -> None:
    url = simulated_upstream.base_url + "/chat/completions"
    simulated_upstream.fail("m", 503, times=2)
    statuses = [(await _post(url, _chat("hi")))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert simulated_upstream.requests["m"] == 3


async def test_weak_model_hedges_on_hard_prompts_and_strong_one_answers() -> None:
    profiles = {"weak": ModelProfile(skill=0.3), "strong": ModelProfile(skill=0.95)}
    prompt = "[difficulty=0.8] prove the theorem"
    assert difficulty(prompt) == 0.8
    async with SimulatedUpstream(profiles) as upstream:
        url = upstream.base_url + "/chat/completions"
        _, weak = await _post(url, {**_chat(prompt), "model": "weak"})
        _, strong = await _post(url, {**_chat(prompt), "model": "strong"})
    assert weak["choices"][0]["message"]["content"].startswith("I'm not sure")
    assert strong["choices"][0]["message"]["content"].startswith("strong answers:")


async def test_refuses_when_told(simulated_upstream: SimulatedUpstream) -> None:
    simulated_upstream.refuse("m")
    _, body = await _post(simulated_upstream.base_url + "/chat/completions", _chat("hi"))
    assert body["choices"][0]["message"]["content"] == REFUSAL


async def test_serves_anthropic_messages_and_requires_its_version_header(
    simulated_upstream: SimulatedUpstream,
) -> None:
    url = simulated_upstream.anthropic_base_url + "/v1/messages"
    body = {**_chat("hello"), "max_tokens": 64}
    status, missing = await _post(url, body)
    assert status == 400
    assert missing["type"] == "error"
    status, answer = await _post(url, body, **{"anthropic-version": "2023-06-01"})
    assert status == 200
    assert answer["type"] == "message"
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["output_tokens"] > 0


async def test_lists_models() -> None:
    async with SimulatedUpstream({"a": ModelProfile(), "b": ModelProfile()}) as upstream, \
            aiohttp.ClientSession() as session, \
            session.get(upstream.base_url + "/models") as response:
        body = await response.json()
    assert [m["id"] for m in body["data"]] == ["a", "b"]


def test_runs_in_a_background_thread_for_sync_code() -> None:
    import json
    import urllib.request

    with SimulatedUpstream() as upstream:
        request = urllib.request.Request(
            upstream.base_url + "/chat/completions",
            data=json.dumps(_chat("hi")).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.load(response)
    assert body["object"] == "chat.completion"
    assert upstream.completed["m"] == 1
