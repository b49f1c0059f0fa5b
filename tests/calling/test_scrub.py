"""An upstream error message that quotes the prompt back is not recorded or raised verbatim
unless the policy logs content; its status and type stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from taskroute.calling.scrub import REMOVED, scrub
from taskroute.exceptions import ChainExhausted, UpstreamStatus
from taskroute.providers.base import Timeouts
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk
from taskroute.router import Router

from .support import MemoryStore, ask, make_policy

SECRET = "my account number is 4111-1111-1111-1111 and my name is Ada"


class Echoing:
    """A provider that refuses every request, quoting it back (as many 400s do)."""

    name = "echo"

    async def complete(self, request: ChatRequest, *, model: str,
                       timeouts: Timeouts) -> ChatResponse:
        raise UpstreamStatus(f"echo ({model}) answered 400: invalid input "
                             f"'{request.last_user_text}' (too long)", status=400, model=model,
                             body={"error": request.last_user_text})

    def stream(self, request: ChatRequest, *, model: str,
               timeouts: Timeouts) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("log_content", [False, True])
async def test_an_upstream_message_echoing_the_prompt_is_scrubbed_unless_content_is_logged(
    upstream: SimulatedUpstream, log_content: bool
) -> None:
    policy = replace(make_policy(upstream, retries=0), log_content=log_content)
    store = MemoryStore()
    router = Router(policy, classifier=False, store=store,
                    providers={"sim": Echoing(), "alt": Echoing()})
    with pytest.raises(ChainExhausted) as caught:
        await router.complete(ask(SECRET), task="chat")
    recorded = [a.error or "" for a in caught.value.attempts]
    everything = " ".join([caught.value.message, *recorded, str(store.entries[0].record.error)])
    assert ("4111-1111-1111-1111" in everything) is log_content
    assert all("answered 400: invalid input" in e for e in recorded)
    if not log_content:
        assert REMOVED in recorded[0]
    await router.aclose()


def test_scrub_keeps_text_that_is_not_the_prompt() -> None:
    assert scrub("model overloaded, try again", SECRET) == "model overloaded, try again"
    assert scrub("bad 'hi there'", "hi there") == f"bad '{REMOVED}'"
    assert scrub("hi", "hi") == "hi"   # too short to tell an echo from a word
