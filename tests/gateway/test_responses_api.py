"""/v1/responses driven by the official `openai` SDK (`client.responses.create` and
`client.responses.stream`) against the gateway and the simulated upstream: text, tools and their
call/output items, structured output, streaming events, stored conversations, errors."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from taskroute.policy.model import Policy
from tests.gateway.conftest import RunningGateway, StartGateway

WEATHER: Any = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False}}
CITY_SCHEMA: Any = {"type": "object", "properties": {"city": {"type": "string"},
                                                "population": {"type": "integer"}},
               "required": ["city", "population"], "additionalProperties": False}


def client(gw: RunningGateway, api_key: str = "none", **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key=api_key, max_retries=0, timeout=10,
                              default_headers=headers or None)


def sent(gw: RunningGateway, model_id: str) -> dict[str, Any]:
    """The last body the simulated upstream got for the policy's `model_id`."""
    return gw.upstream.last_body[model_id.partition("/")[2]]


def logging_content(policy: Policy) -> Policy:
    return dataclasses.replace(policy, log_content=True)


async def test_a_string_input_is_routed_and_answered_as_a_response(
    gateway: RunningGateway,
) -> None:
    async with client(gateway) as c:
        raw = await c.responses.with_raw_response.create(
            model="auto", input="hello there, how are you?", instructions="Be brief.")
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output_text
    assert response.output[0].type == "message"
    assert response.instructions == "Be brief."
    assert response.usage is not None and response.usage.input_tokens > 0
    assert response.model == raw.headers["x-taskroute-model"] == "openai/gpt-4.1-mini"
    rows = await gateway.log_rows()
    assert [(r["api"], r["http_status"]) for r in rows] == [("responses", 200)]
    assert rows[0]["request_id"] == raw.headers["x-taskroute-request-id"]


async def test_item_input_with_instructions_reaches_the_upstream_as_chat_messages(
    gateway: RunningGateway,
) -> None:
    items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "Name a colour."}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Bleu."}]},
        {"type": "message", "role": "user", "content": "Another one?"}]
    async with client(gateway) as c:
        response = await c.responses.create(model="auto", instructions="Answer in French.",
                                            input=items, max_output_tokens=50)
    body = sent(gateway, response.model)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "Answer in French."
    assert body["messages"][2]["content"] == "Bleu."
    assert body["max_tokens"] == 50 or body.get("max_completion_tokens") == 50


async def test_function_tools_round_trip_through_call_and_output_items(
    gateway: RunningGateway,
) -> None:
    question = "What is the weather in Paris?"
    async with client(gateway) as c:
        first = await c.responses.create(model="auto", input=question, tools=[WEATHER],
                                         tool_choice="required")
        calls = [item for item in first.output if item.type == "function_call"]
        assert len(calls) == 1 and calls[0].name == "get_weather"
        assert "city" in json.loads(calls[0].arguments)
        items: Any = [
            {"role": "user", "content": question},
            {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name,
             "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id,
             "output": '{"temperature_c": 18}'}]
        second = await c.responses.create(model="auto", tools=[WEATHER], input=items)
    assert "tool result" in second.output_text
    body = sent(gateway, second.model)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["messages"][1]["tool_calls"][0]["id"] == calls[0].call_id
    assert body["messages"][2] == {"role": "tool", "tool_call_id": calls[0].call_id,
                                   "content": '{"temperature_c": 18}'}


async def test_text_format_json_schema_gives_structured_output(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        response = await c.responses.create(
            model="auto", input="Tell me about Lyon as JSON.",
            text={"format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA,
                             "strict": True}})

        class City(BaseModel):
            city: str
            population: int

        data = json.loads(response.output_text)
        fmt = sent(gateway, response.model)["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == CITY_SCHEMA
        parsed = await c.responses.parse(model="auto", input="Tell me about Lyon.",
                                         text_format=City)
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)
    assert isinstance(parsed.output_parsed, City)


async def test_reasoning_effort_is_passed_to_a_model_that_takes_it(
    gateway: RunningGateway,
) -> None:
    async with client(gateway) as c:
        response = await c.responses.create(model="auto", input="hi",
                                            reasoning={"effort": "low"})
    assert sent(gateway, response.model)["reasoning_effort"] == "low"


async def test_stream_sends_the_semantic_events_in_order(gateway: RunningGateway) -> None:
    async with client(gateway) as c, c.responses.stream(
            model="auto", input="Write two sentences about the sea.") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert "response.output_text.delta" in kinds
    tail = ["response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
    assert kinds[-4:] == tail
    assert final.status == "completed" and final.output_text
    assert final.usage is not None and final.usage.output_tokens > 0
    rows = await gateway.log_rows()
    assert [(r["api"], r["status"]) for r in rows] == [("responses", "ok")]


async def test_stream_with_tools_streams_the_call_arguments(gateway: RunningGateway) -> None:
    async with client(gateway) as c, c.responses.stream(
            model="auto", input="What is the weather in Oslo?", tools=[WEATHER],
            tool_choice="required") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments)


async def test_stream_with_structured_output_parses(gateway: RunningGateway) -> None:
    class City(BaseModel):
        city: str
        population: int

    async with client(gateway) as c, c.responses.stream(
            model="auto", input="Lyon, as JSON", text_format=City) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert isinstance(final.output_parsed, City)


@pytest.mark.parametrize("streamed", [False, True])
async def test_previous_response_id_continues_a_stored_conversation(
    start_gateway: StartGateway, streamed: bool,
) -> None:
    gw = await start_gateway(edit_policy=logging_content)
    first: Any
    async with client(gw) as c:
        if streamed:
            async with c.responses.stream(model="auto", input="My name is Ada.",
                                          store=True) as stream:
                async for _ in stream:
                    pass
                first = await stream.get_final_response()
        else:
            first = await c.responses.create(model="auto", input="My name is Ada.", store=True)
        assert first.store is True
        second = await c.responses.create(model="auto", input="What is my name?",
                                          previous_response_id=first.id, instructions="Be kind.")
    messages = sent(gw, second.model)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "My name is Ada."
    assert messages[2]["content"] == first.output_text
    assert messages[3]["content"] == "What is my name?"


async def test_previous_response_id_without_content_logging_says_it_was_not_stored(
    gateway: RunningGateway,
) -> None:
    async with client(gateway) as c:
        first = await c.responses.create(model="auto", input="My name is Ada.", store=True)
        assert first.to_dict()["store"] is False  # asked for, but the policy does not log content
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="auto", input="And?", previous_response_id=first.id)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "previous_response_id"
    assert "was not stored" in error["message"] and "log content" in error["message"]
    assert await gateway.log_rows("SELECT * FROM stored_responses") == []


async def test_a_response_without_store_true_is_not_kept(start_gateway: StartGateway) -> None:
    gw = await start_gateway(edit_policy=logging_content)
    async with client(gw) as c:
        first = await c.responses.create(model="auto", input="My name is Ada.")
        with pytest.raises(openai.BadRequestError, match="not found"):
            await c.responses.create(model="auto", input="And?", previous_response_id=first.id)


async def test_a_stored_response_is_only_continued_with_the_key_that_made_it(
    start_gateway: StartGateway,
) -> None:
    from taskroute.exceptions import Secret
    from taskroute.gateway.settings import GatewaySettings

    gw = await start_gateway(GatewaySettings(api_keys=(Secret("key-a"), Secret("key-b"))),
                             edit_policy=logging_content)
    async with client(gw, "key-a") as a, client(gw, "key-b") as b:
        first = await a.responses.create(model="auto", input="secret", store=True)
        with pytest.raises(openai.BadRequestError, match="not found"):
            await b.responses.create(model="auto", input="?", previous_response_id=first.id)
        await a.responses.create(model="auto", input="?", previous_response_id=first.id)


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "auto"}, "input"),
    ({"model": "auto", "input": []}, "input"),
    ({"model": "auto", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "auto", "input": [{"type": "computer_call"}]}, "input[0].type"),
    ({"model": "auto", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "auto", "input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"model": "auto", "input": "hi", "frobnicate": 1}, "frobnicate"),
    ({"model": "auto", "input": [{"role": "user", "content": ""}]}, "input"),
])
async def test_bad_input_gets_an_openai_error_and_is_logged_as_refused(
    gateway: RunningGateway, body: dict[str, Any], param: str,
) -> None:
    status, _, raw = await gateway.request("POST", "/v1/responses", json=body)
    error = json.loads(raw)["error"]
    assert status == 400 and error["type"] == "invalid_request_error"
    assert error["param"] == param
    refused = await gateway.log_rows("SELECT api, http_status FROM refused")
    assert [tuple(r) for r in refused] == [("responses", 400)]


async def test_an_unknown_model_is_a_404_in_openai_shape(gateway: RunningGateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.NotFoundError) as caught:
            await c.responses.create(model="no-such-model", input="hi")
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "model_not_found"


async def test_explain_adds_the_route_to_the_response(gateway: RunningGateway) -> None:
    status, _, raw = await gateway.request(
        "POST", "/v1/responses", json={"model": "auto", "input": "hi"},
        headers={"X-Taskroute-Explain": "1"})
    body = json.loads(raw)
    assert status == 200 and body["taskroute"]["answered_by"] == body["model"]
