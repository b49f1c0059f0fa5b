"""`hold for refusal: {release early: true}`: the opening goes out as soon as the refusal gate
is sure of it (its first word is one no refusal starts with), not only at 40 characters, while
a refusal is still held and escalates unseen."""

from __future__ import annotations

import asyncio
import re

import pytest

from taskroute.calling.hold import settled_by
from taskroute.gates.non_empty import NonEmptyGate
from taskroute.gates.refusal import RefusalGate
from taskroute.policy.model import RefusalHold
from taskroute.policy.prose import describe_policy
from taskroute.providers.simulated import SimulatedUpstream

from .support import RouterFactory, ask, make_policy, read

LONG = "tell me about " + " ".join(f"word{i}" for i in range(12))
EARLY = "  hold for refusal: {chars: 40, at most: 5s, release early: true}"
FULL = "  hold for refusal: {chars: 40, at most: 5s}"


@pytest.mark.parametrize(("opening", "sure"), [
    ("", False), ("Sure", False),             # the first word is not whole yet
    ("Sure, here", True), ("The answer is", True), ("1. First", True), ("```python\n", True),
    ("I ", False), ("I'm sorry", False), ("I’m afraid", False), ("**I cannot", False),
    ("Sorry, but", False), ("Unfortunately, I", False), ("As an AI", False),
    ("It's hard to say", False), ("> I can", False),
])
def test_the_refusal_gate_is_sure_of_an_opening_once_its_first_word_is_no_refusals(
    opening: str, sure: bool
) -> None:
    assert RefusalGate().settled(opening) is sure


def test_with_patterns_of_its_own_the_gate_is_never_sure_so_the_whole_hold_is_kept() -> None:
    own = RefusalGate(extra=(re.compile("we do not", re.IGNORECASE),))
    assert own.settled("Sure, here it is") is False
    assert settled_by((RefusalGate(),)) is not None
    both = settled_by((RefusalGate(), own))  # every opening gate must be sure
    assert both is not None and both("Sure, here it is") is False
    assert settled_by((NonEmptyGate(),)) is None
    assert settled_by(()) is None


@pytest.mark.parametrize(("hold", "early"), [(EARLY, True), (FULL, False)])
async def test_released_early_the_first_words_go_out_while_the_rest_is_still_coming(
    make_router: RouterFactory, upstream: SimulatedUpstream, hold: str, early: bool
) -> None:
    """The model sends three words, then goes quiet for 2 s: the full hold waits for its 40
    characters, so nothing goes out before the pause ends; released early, "small answers:"
    goes out at once."""
    upstream.stall("small", after=4, seconds=2)
    stream = make_router(calling_extra=hold).stream(ask(LONG), task="chat")
    loop = asyncio.get_running_loop()
    started = loop.time()
    first: float | None = None
    text = ""
    async for chunk in stream:
        if chunk.delta_text and first is None:
            first = loop.time() - started
        text += chunk.delta_text
    assert first is not None
    assert (first < 1.0) is early, first
    assert text == "small answers: tell me about word0 word1 word2 word3 word4."
    assert stream.record.status == "ok" and len(stream.record.attempts) == 1


async def test_released_early_a_refusal_is_still_held_and_escalates_unseen(
    make_router: RouterFactory, upstream: SimulatedUpstream
) -> None:
    upstream.refuse("small")
    stream = make_router(calling_extra=EARLY).stream(ask(LONG), task="chat")
    text, _ = await read(stream)
    assert text == "medium answers: tell me about word0 word1 word2 word3 word4."
    first, second = stream.record.attempts
    assert (first.status, second.role) == ("rejected", "escalation")


def test_release_early_is_read_from_the_policy_and_said_in_its_prose(
    upstream: SimulatedUpstream,
) -> None:
    policy = make_policy(upstream, calling_extra=EARLY)
    assert policy.calling.refusal_hold == RefusalHold(40, 5.0, release_early=True)
    assert "once its first word shows it is no refusal" in describe_policy(policy)
    plain = make_policy(upstream, calling_extra=FULL)
    assert plain.calling.refusal_hold.release_early is False
    assert "first word" not in describe_policy(plain)
