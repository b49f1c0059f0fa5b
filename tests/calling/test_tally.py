"""The stream's tally: one pass over each chunk as it goes by gives the answer's cost, its end and
the answer itself — judged at any point (the refusal hold's opening, the record's whole answer)
without reading a chunk again, and each answer taken from it left as it was by what comes
after."""

from __future__ import annotations

from typing import Any

from taskroute.calling.assemble import Tally, assemble
from taskroute.response import StreamChunk, Usage


def chunk(*choices: dict[str, Any], **fields: Any) -> StreamChunk:
    return StreamChunk({**fields, "choices": list(choices)})


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "finish_reason": finish}


THINKING = {"type": "thinking", "thinking": "weigh it", "signature": "s"}
STREAM = [
    chunk(delta(role="assistant"), id="chatcmpl-1", model="up/m"),
    chunk(delta(content="Let me ", reasoning_content="weigh", thinking_blocks=[THINKING])),
    chunk(delta(content="look."), delta(1, content="(another choice)")),
    chunk(delta(tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "get_",
                                                                      "arguments": ""}}])),
    chunk({**delta(tool_calls=[{"index": 0, "function": {"name": "weather",
                                                        "arguments": '{"city": '}}]),
           "logprobs": {"content": [{"token": "x", "logprob": -0.1}]}}),
    chunk(delta(tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "now"}},
                            {"index": 0, "function": {"arguments": '"Oslo"}'}}])),
    chunk(delta(finish="tool_calls")),
    StreamChunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 9,
                                          "total_tokens": 16}}),
]


def test_a_tally_assembles_the_first_choice_and_counts_every_choices_tool_calls() -> None:
    tally = Tally.of(STREAM)
    answer = tally.response(model="fallback")
    assert (answer.id, answer.model, answer.finish_reason) == ("chatcmpl-1", "up/m", "tool_calls")
    message = answer.choices[0].message
    assert message.content == "Let me look."  # the second choice's text is not the answer's
    assert message.tool_calls == [
        {"id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}]
    assert (message.reasoning_content, message.thinking_blocks) == ("weigh", [THINKING])
    assert answer.logprobs == {"content": [{"token": "x", "logprob": -0.1}]}
    assert answer.usage == Usage(prompt_tokens=7, completion_tokens=9, total_tokens=16)
    # the text logged and estimated: the answer's text and the tool calls' arguments, in order
    assert "".join(tally.text) == 'Let me look.{"city": "Oslo"}'
    assert (tally.chunks, tally.finish_reason, tally.tool_calls) == (8, "tool_calls", True)
    assert assemble(STREAM, model="fallback").choices == answer.choices


def test_an_answer_taken_midway_is_left_as_it_was_by_the_chunks_after_it() -> None:
    """The refusal hold judges the opening off the tally the record then goes on filling: the
    opening it judged (its tool call half-written) must stay what it was."""
    tally = Tally.of(STREAM[:5])
    opening = tally.response(model="fallback")
    assert opening.finish_reason is None and tally.finish_reason is None
    for more in STREAM[5:]:
        tally.add(more)
    assert opening.tool_calls == [{"id": "call_a", "type": "function",
                                   "function": {"name": "get_weather", "arguments": '{"city": '}}]
    assert opening.choices[0].message.thinking_blocks == [THINKING]
    assert opening.logprobs == {"content": [{"token": "x", "logprob": -0.1}]}
    assert opening.usage is None
    whole = tally.response(model="fallback")
    assert whole.choices == assemble(STREAM, model="fallback").choices
    assert whole.tool_calls is not None and len(whole.tool_calls) == 2


def test_plus_is_a_copy_the_tally_it_came_from_is_unchanged_by() -> None:
    before = Tally.of(STREAM[:4])
    after = before.plus(STREAM[4:])
    assert after.response(model="m").choices == assemble(STREAM, model="m").choices
    assert before.response(model="m").choices == assemble(STREAM[:4], model="m").choices
    assert (before.chunks, before.tool_calls, "".join(before.text)) == (4, True, "Let me look.")
    assert before.finish_reason is None and before.usage is None


def test_a_tally_of_nothing_is_an_empty_answer() -> None:
    answer = Tally().response(model="fallback")
    assert (answer.model, answer.text, answer.tool_calls, answer.finish_reason) == (
        "fallback", "", None, None)
