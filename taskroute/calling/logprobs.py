"""Log probabilities asked for taskroute's own use, and kept from a caller who did not ask.

A task whose race or gates read the model's confidence (`race: {min confidence: ...}`, or a
gate that says `needs_logprobs = True`, as `logprob` does) needs token log-probabilities
whether or not the caller asked for them. So the request sent upstream asks for them
(`logprobs: true`, OpenAI's field) while the caller's own request object stays as it was (it is
what the gates and the log see), and the answer the caller gets carries logprobs only when the
caller asked. A provider whose wire format has no logprobs (Anthropic's Messages API) never
sends the field on; the race then estimates its confidence (`taskroute.gates.confidence`).

Only `logprobs: true` is asked: exp(mean token logprob) needs no `top_logprobs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from taskroute.gates.base import Gate
from taskroute.policy.model import RaceSpec
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk


def needed(race: RaceSpec | None, gates: Sequence[Gate]) -> bool:
    """Does this task read the model's confidence (its race, or one of its gates)?"""
    racing = race is not None and race.min_confidence > 0
    return racing or any(getattr(gate, "needs_logprobs", False) for gate in gates)


def client_asked(request: ChatRequest) -> bool:
    return bool(request.extra.get("logprobs"))


def upstream_request(request: ChatRequest) -> ChatRequest:
    """`request` asking for logprobs: a copy, the caller's object is left as it was."""
    if client_asked(request):
        return request
    return msgspec.structs.replace(request, extra={**request.extra, "logprobs": True})


def for_caller(response: ChatResponse, request: ChatRequest) -> ChatResponse:
    """The answer as the caller gets it: without the logprobs it did not ask for."""
    if client_asked(request) or all(c.logprobs is None for c in response.choices):
        return response
    choices = [msgspec.structs.replace(c, logprobs=None) for c in response.choices]
    return msgspec.structs.replace(response, choices=choices)


def chunks_for_caller(
    chunks: Iterable[StreamChunk], request: ChatRequest
) -> list[StreamChunk]:
    """A buffered stream's chunks as the caller gets them (see `for_caller`)."""
    if client_asked(request):
        return list(chunks)
    return [_without_logprobs(chunk) for chunk in chunks]


def _without_logprobs(chunk: StreamChunk) -> StreamChunk:
    choices = chunk.data.get("choices")
    if not isinstance(choices, list) or not any(
        isinstance(c, dict) and c.get("logprobs") is not None for c in choices
    ):
        return chunk
    stripped = [
        {**c, "logprobs": None} if isinstance(c, dict) and "logprobs" in c else c
        for c in choices
    ]
    return StreamChunk({**chunk.data, "choices": stripped})
