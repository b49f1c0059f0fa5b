"""Rescuing a stream that broke or stalled after its answer had begun.

Part of the answer has gone to the client, so the request can no longer fail over unseen.
What can still be done depends on what went out:

- nothing usable (only whitespace): the next model *restarts* the answer, invisibly;
- text: the next model *continues* it — an Anthropic-style model from an assistant prefill,
  any other from the partial answer as an assistant turn plus an instruction to go on — and
  its tokens are spliced into the same client stream, the overlap at the seam removed;
- part of a tool call, or of a JSON answer: continuing is not sound (a model cannot be
  trusted to resume a half-written call or document exactly), so the stream ends with an
  error event, recorded as such.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from taskroute.calling.assemble import Tally
from taskroute.calling.context import CallContext
from taskroute.calling.once import Opened, Wiring, open_stream
from taskroute.records import AttemptRole
from taskroute.request import ChatRequest, Message
from taskroute.response import StreamChunk

CONTINUE_INSTRUCTION = (
    "Your previous reply was cut off. Continue it exactly where it stops: do not repeat any "
    "of it, do not add a preamble, and keep the same language and format."
)
SEAM_WINDOW = 64   # characters of the continuation read before the seam is trimmed
MIN_OVERLAP = 8    # a shorter repeat at the seam may be a coincidence (" the ", "\n\n")

Action = Literal["continue", "restart", "refuse"]


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    partial: str = ""       # the answer's text that reached the client
    reason: str = ""        # why it cannot be continued (`refuse`)


def plan(request: ChatRequest, given: Sequence[StreamChunk], tally: Tally) -> Plan:
    """What to do with a stream that broke after `given` reached the client."""
    partial = "".join(chunk.delta_text for chunk in given)
    if tally.tool_calls:
        return Plan("refuse", partial, "a tool call was cut off mid-way; continuing it is "
                                       "not sound")
    if not partial.strip():
        return Plan("restart", partial)
    if request.format_kind != "text":
        return Plan("refuse", partial, "a JSON answer cut off mid-way cannot be continued "
                                       "soundly")
    return Plan("continue", partial)


def continuation(request: ChatRequest, partial: str, *, prefill: bool,
                 spent: int = 0) -> ChatRequest:
    """The request that makes a model go on from `partial`. With `prefill` (the Messages API)
    the partial answer is the assistant turn the model continues; Anthropic refuses one that
    ends in whitespace, so that is left off (the seam puts it back). Otherwise the partial
    answer is an assistant turn followed by an instruction to continue it. `spent`: output
    tokens the answer has used already, taken off the caller's `max_tokens` (the limit is the
    whole answer's)."""
    if not partial:
        return request
    turns = list(request.messages)
    if prefill:
        turns.append(Message(role="assistant", content=partial.rstrip()))
    else:
        turns.append(Message(role="assistant", content=partial))
        turns.append(Message(role="user", content=CONTINUE_INSTRUCTION))
    limit = request.max_tokens
    if limit is not None and spent:
        limit = max(1, limit - spent)
    return msgspec.structs.replace(request, messages=turns, max_tokens=limit)


def continuing(partial: str, *, spent: int = 0) -> Callable[
        [CallContext, Wiring, str, str, AttemptRole], Awaitable[Opened]]:
    """One call (the innermost layer, as `open_stream`) that continues `partial`, in the way
    the deployment's provider supports."""

    async def once(ctx: CallContext, wiring: Wiring, model: str, deployment: str,
                   role: AttemptRole) -> Opened:
        provider, _ = wiring.provider(deployment)
        prefill = bool(getattr(provider, "assistant_prefill", False))
        request = continuation(ctx.outgoing, partial, prefill=prefill, spent=spent)
        return await open_stream(ctx, wiring, model, deployment, role, request=request)

    return once


MAX_RESCUES = 2    # a stream is continued at most this often (each break costs the client)


def rescuers(chain: Sequence[str], broken: str, *, rescues: int) -> tuple[str, ...]:
    """Who continues a stream `broken` was writing, after `rescues` earlier rescues: the
    models after it in the chain, else (it was the last) it again, once; nobody past
    `MAX_RESCUES`."""
    if rescues >= MAX_RESCUES:
        return ()
    after = tuple(chain[chain.index(broken) + 1:]) if broken in chain else ()
    return after or ((broken,) if rescues == 0 else ())


class Seam:
    """Splices a continuation onto the text already sent: holds its first chunks until
    `SEAM_WINDOW` characters (or its end) have come, then drops what repeats the sent text's
    tail — the longest repeat of at least `MIN_OVERLAP` characters, or all of the sent text
    when the model started over — and whitespace doubled at the join."""

    def __init__(self, sent: str) -> None:
        self.sent = sent
        self.trimmed = 0            # characters dropped at the seam
        self._held: list[StreamChunk] = []
        self._text = ""
        self.open = True

    def take(self, chunk: StreamChunk) -> list[StreamChunk]:
        """The chunks to give out now (none while the seam is still being read)."""
        if not self.open:
            return [chunk]
        _strip_role(chunk)
        if _is_empty(chunk):
            return []
        self._held.append(chunk)
        self._text += chunk.delta_text
        if len(self._text) < SEAM_WINDOW and chunk.finish_reason is None and chunk.data.get(
                "choices"):
            return []
        return self.close()

    def close(self) -> list[StreamChunk]:
        """Trim and give out what is held (the continuation ended, or enough has come)."""
        if not self.open:
            return []
        self.open = False
        drop = overlap(self.sent, self._text)
        self.trimmed = drop
        held, self._held = self._held, []
        for chunk in held:
            if drop <= 0:
                break
            text = chunk.delta_text
            if not text:
                continue
            cut = min(drop, len(text))
            _set_text(chunk, text[cut:])
            drop -= cut
        return [chunk for chunk in held if not _is_empty(chunk)]


def overlap(sent: str, more: str) -> int:
    """How many leading characters of `more` repeat what `sent` already said."""
    if not sent or not more:
        return 0
    if more.startswith(sent):
        return len(sent)  # the model started over
    longest = 0
    for k in range(min(len(sent), len(more)), MIN_OVERLAP - 1, -1):
        if sent.endswith(more[:k]):
            longest = k
            break
    if longest:
        return longest
    if sent[-1].isspace() and more[0].isspace():  # the prefill left the space off
        return len(more) - len(more.lstrip())
    return 0


def _strip_role(chunk: StreamChunk) -> None:
    """A continuation's role announcement: the client's stream announced its role already."""
    delta = chunk.delta
    if delta is not None:
        delta.pop("role", None)


def _set_text(chunk: StreamChunk, text: str) -> None:
    delta = chunk.delta
    if delta is not None:
        delta["content"] = text


def _is_empty(chunk: StreamChunk) -> bool:
    """Nothing for the client: no text, tool call, refusal, end or usage."""
    data = chunk.data
    if data.get("usage") or not data.get("choices"):
        return not data.get("usage")
    for choice in data["choices"]:
        delta = choice.get("delta") or {}
        if choice.get("finish_reason") or any(delta.get(k) for k in (
                "content", "tool_calls", "refusal", "reasoning_content")):
            return False
    return True
