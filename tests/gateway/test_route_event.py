"""The route before the answer: a streamed request that asks (`X-Taskroute-Route-Event: 1`, or
`metadata.route_event`) gets the route and its label as its first event, before the model's
first token, in each API's idiom; one that does not ask gets the stream as before. Read as raw
SSE (what a browser or a hand-written client sees) and through the official SDKs."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

import aiohttp
import anthropic
import openai
import pytest

from taskroute.policy.model import Policy
from taskroute.providers.simulated import ModelProfile
from tests.gateway.conftest import RunningGateway, StartGateway

ASK = {"X-Taskroute-Route-Event": "1"}
DELAY_S = 0.3  # the stand-in's wait before its first token
CHAT = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi there"}]}
MESSAGES = {"model": "auto", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "hi there"}]}
RESPONSES = {"model": "auto", "stream": True, "input": "hi there"}


@dataclass
class Event:
    at: float              # seconds since the request was sent
    name: str | None       # the `event:` line, if any
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def read_events(
    gw: RunningGateway, path: str, body: dict[str, Any], headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], list[Event]]:
    """Every SSE event of a streamed answer, with when it arrived."""
    events: list[Event] = []
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(
        gw.url + path, json=body, headers=headers or {}) as resp:
        name: str | None = None
        data: list[str] = []
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and data:
                events.append(Event(time.perf_counter() - start, name, "\n".join(data)))
                name, data = None, []
        return resp.status, dict(resp.headers), events


def slow_first_token(gw: RunningGateway) -> None:
    gw.upstream.set_profile("gpt-4.1-mini", ModelProfile(first_token_s=DELAY_S))


def first_text_at(events: list[Event], is_text: Any) -> float:
    return next(e.at for e in events if is_text(e))


def chat_text(e: Event) -> bool:
    data = e.json() if e.data != "[DONE]" else {}
    return any((c.get("delta") or {}).get("content") for c in data.get("choices") or [])


# -- before the first token, in each API's idiom -----------------------------------------------


async def test_chat_route_chunk_comes_first_and_before_the_first_token(
    gateway: RunningGateway,
) -> None:
    slow_first_token(gateway)
    status, headers, events = await read_events(gateway, "/v1/chat/completions", CHAT, ASK)
    assert status == 200
    first = events[0]
    assert first.name is None  # unnamed, as the usage chunk: every openai SDK reads it as one
    chunk = first.json()
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"] == []
    route = chunk["taskroute"]
    assert route["type"] == "taskroute.route" and route["label"] == "Quick answer"
    assert route["tier"] == "fast" and route["model"] == "openai/gpt-4.1-mini"
    assert route["request_id"] == headers["X-Taskroute-Request-Id"]
    assert headers["X-Taskroute-Label"] == "Quick answer"
    # sent before the upstream was called: the stand-in's wait lies between the two
    assert first_text_at(events, chat_text) - first.at > DELAY_S / 2
    assert sum("taskroute" in e.data for e in events) == 1
    assert events[-1].data == "[DONE]"


async def test_messages_route_event_follows_message_start_before_the_first_token(
    gateway: RunningGateway,
) -> None:
    slow_first_token(gateway)
    status, _, events = await read_events(gateway, "/v1/messages", MESSAGES, ASK)
    assert status == 200
    assert [e.name for e in events[:2]] == ["message_start", "taskroute.route"]
    route = events[1].json()
    assert route["type"] == "taskroute.route" and route["label"] == "Quick answer"
    assert events[0].json()["message"]["model"] == "openai/gpt-4.1-mini"
    first_text = first_text_at(events, lambda e: e.name == "content_block_delta")
    assert first_text - events[1].at > DELAY_S / 2
    assert events[-1].name == "message_stop"
    assert [e.name for e in events].count("message_start") == 1


async def test_responses_route_event_follows_response_created_in_sequence(
    gateway: RunningGateway,
) -> None:
    slow_first_token(gateway)
    status, _, events = await read_events(gateway, "/v1/responses", RESPONSES, ASK)
    assert status == 200
    assert [e.name for e in events[:3]] == [
        "response.created", "response.in_progress", "taskroute.route"]
    assert events[2].json()["label"] == "Quick answer"
    assert [e.json()["sequence_number"] for e in events] == list(range(len(events)))
    first_text = first_text_at(events, lambda e: e.name == "response.output_text.delta")
    assert first_text - events[2].at > DELAY_S / 2
    assert events[-1].name == "response.completed"


async def test_metadata_asks_for_it_too(gateway: RunningGateway) -> None:
    body = {**CHAT, "metadata": {"route_event": "true"}}
    _, _, events = await read_events(gateway, "/v1/chat/completions", body)
    assert events[0].json()["taskroute"]["label"] == "Quick answer"
    body = {**MESSAGES, "metadata": {"route_event": True}}
    _, _, events = await read_events(gateway, "/v1/messages", body)
    assert events[1].name == "taskroute.route"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES), ("/v1/responses", RESPONSES),
])
async def test_not_asked_no_route_event(
    gateway: RunningGateway, path: str, body: dict[str, Any],
) -> None:
    status, headers, events = await read_events(
        gateway, path, body, {"X-Taskroute-Route-Event": "0"})
    assert status == 200 and events
    assert not any("taskroute" in e.data or e.name == "taskroute.route" for e in events)
    assert headers["X-Taskroute-Label"] == "Quick answer"  # the header is there all the same


async def test_a_failure_before_the_first_token_ends_the_asked_stream_with_an_error_event(
    gateway: RunningGateway,
) -> None:
    for model in ("gpt-4.1-mini", "claude-haiku-4-5"):  # the pick and its failover
        gateway.upstream.behave(model, status=400)
    body = {**CHAT, "model": "openai/gpt-4.1-mini"}  # named: a chain of one
    status, _, events = await read_events(gateway, "/v1/chat/completions", body, ASK)
    assert status == 200  # committed with the route event
    assert "taskroute" in events[0].json()
    assert "error" in events[-1].json()
    rows = await gateway.log_rows()
    assert [(r["status"], r["http_status"]) for r in rows] == [("error", 200)]
    status, _, events = await read_events(gateway, "/v1/messages",
                                          {**MESSAGES, "model": "openai/gpt-4.1-mini"}, ASK)
    assert [e.name for e in events] == ["message_start", "taskroute.route", "error"]


async def test_hanging_up_after_the_route_event_is_logged_499_and_cancels_the_call(
    gateway: RunningGateway,
) -> None:
    from tests.calling.support import eventually

    gateway.upstream.answer_slowly("gpt-4.1-mini", 5.0)
    async with aiohttp.ClientSession() as session, session.post(
            gateway.url + "/v1/chat/completions", json=CHAT, headers=ASK) as resp:
        assert b"taskroute.route" in await resp.content.readline()  # in: hang up
    assert await eventually(lambda: gateway.upstream.cancelled["gpt-4.1-mini"] == 1)
    await asyncio.sleep(0.1)  # the cancelled call is recorded a moment after the upstream sees it
    (row,) = await gateway.log_rows()
    assert (row["http_status"], row["status"]) == (499, "error")
    assert row["error"] == "the client closed the connection"


# -- the official SDKs ---------------------------------------------------------------------------


def openai_client(gw: RunningGateway, headers: dict[str, str] | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="none", max_retries=0, timeout=10,
                              default_headers=headers)


def anthropic_client(
    gw: RunningGateway, headers: dict[str, str] | None = None,
) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key="none", max_retries=0, timeout=10,
                                    default_headers=headers)


async def test_openai_sdk_reads_the_route_chunk_as_a_chunk_without_choices(
    gateway: RunningGateway,
) -> None:
    async with openai_client(gateway, ASK) as c:
        chunks = [chunk async for chunk in await c.chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": "hi there"}])]
        async with c.chat.completions.stream(
            model="auto", messages=[{"role": "user", "content": "hi there"}]) as helper:
            final = await helper.get_final_completion()
    first = chunks[0]
    assert first.choices == []
    assert (first.model_extra or {})["taskroute"]["label"] == "Quick answer"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks[1:] if ch.choices)
    assert text and final.choices[0].message.content == text


async def test_openai_sdk_not_asked_sees_only_answer_chunks(gateway: RunningGateway) -> None:
    async with openai_client(gateway) as c:
        chunks = [chunk async for chunk in await c.chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": "hi there"}])]
    assert chunks[0].choices and chunks[0].choices[0].delta.role == "assistant"
    assert not any("taskroute" in (ch.model_extra or {}) for ch in chunks)


async def test_openai_sdk_responses_stream_skips_past_the_route_event(
    gateway: RunningGateway,
) -> None:
    async with openai_client(gateway, ASK) as c, c.responses.stream(
            model="auto", input="hi there") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:3] == ["response.created", "response.in_progress", "taskroute.route"]
    assert final.output_text and kinds[-1] == "response.completed"


async def test_anthropic_sdk_streams_the_answer_with_the_route_event_asked(
    gateway: RunningGateway,
) -> None:
    async with anthropic_client(gateway, ASK) as c:
        async with c.messages.stream(
            model="auto", max_tokens=100, messages=[{"role": "user", "content": "hi there"}],
        ) as stream:
            events = [event async for event in stream]
            final = await stream.get_final_message()
        raw = [event async for event in await c.messages.create(
            model="auto", max_tokens=100, stream=True,
            messages=[{"role": "user", "content": "hi there"}])]
    assert [e.type for e in events[:2]] == ["message_start", "taskroute.route"]
    assert getattr(events[1], "label", None) == "Quick answer"  # kept as an extra field
    assert final.content[0].type == "text" and final.content[0].text
    assert [e.type for e in raw[:2]] == ["message_start", "taskroute.route"]


async def test_anthropic_sdk_not_asked_sees_only_messages_events(
    gateway: RunningGateway,
) -> None:
    async with anthropic_client(gateway) as c, c.messages.stream(
        model="auto", max_tokens=100, messages=[{"role": "user", "content": "hi there"}],
    ) as stream:
        kinds = [event.type async for event in stream]
    assert "taskroute.route" not in kinds and kinds[0] == "message_start"


# -- the label header ----------------------------------------------------------------------------


def relabel(label: str | None) -> Any:
    def edit(policy: Policy) -> Policy:
        return replace(policy, tiers=tuple(replace(t, label=label) for t in policy.tiers))
    return edit


async def test_label_header_is_percent_encoded_beyond_ascii(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(edit_policy=relabel("Réponse rapide ⚡ 100%"))
    status, headers, _ = await gw.request(
        "POST", "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200
    assert headers["X-Taskroute-Label"].isascii()
    assert unquote(headers["X-Taskroute-Label"]) == "Réponse rapide ⚡ 100%"
    _, _, events = await read_events(gw, "/v1/chat/completions", CHAT, ASK)
    assert events[0].json()["taskroute"]["label"] == "Réponse rapide ⚡ 100%"  # JSON: as is


async def test_no_label_no_header_and_a_null_label_in_the_event(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(edit_policy=relabel(None))
    _, headers, events = await read_events(gw, "/v1/chat/completions", CHAT, ASK)
    assert "X-Taskroute-Label" not in headers
    assert events[0].json()["taskroute"]["label"] is None


async def test_the_log_keeps_the_label_in_the_decision(gateway: RunningGateway) -> None:
    await read_events(gateway, "/v1/chat/completions", CHAT)
    rows = await gateway.log_rows()
    assert json.loads(rows[0]["decision"])["label"] == "Quick answer"


# -- the demo's use of it --------------------------------------------------------------------


async def test_the_demo_writes_the_label_before_the_text_arrives(gateway: RunningGateway) -> None:
    from taskroute.demo.route_first import show_route_first

    slow_first_token(gateway)
    written: list[tuple[float, str]] = []
    await show_route_first(gateway.base_url, lambda text: written.append(
        (time.perf_counter(), text)), questions=((None, "hi there"),))
    texts = [text for _, text in written]
    label = texts.index("[Quick answer] ")
    answer = next(i for i, t in enumerate(texts) if "answers" in t)
    assert label < answer and written[answer][0] - written[label][0] > DELAY_S / 2
    assert "label after" in texts[-1] and "first token after" in texts[-1]
