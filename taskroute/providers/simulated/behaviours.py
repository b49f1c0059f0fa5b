"""Runtime behaviours per simulated model, with one named setter per misbehaviour. SIMULATED."""

from __future__ import annotations

import dataclasses
from typing import Any

from taskroute.providers.simulated.profiles import NORMAL, Behaviour


class BehaviourBook:
    """Which `Behaviour` each model has now; `times` makes it wear off after N requests."""

    def __init__(self) -> None:
        self._behaviours: dict[str, tuple[Behaviour, int | None]] = {}

    def behave(self, model: str, behaviour: Behaviour | None = None, **fields: Any) -> None:
        """Set `model`'s behaviour: a `Behaviour`, or its fields as keywords."""
        chosen = dataclasses.replace(behaviour or NORMAL, **fields)
        self._behaviours[model] = (chosen, chosen.times)

    def behaviour(self, model: str) -> Behaviour:
        return self._behaviours.get(model, (NORMAL, None))[0]

    def next_behaviour(self, model: str) -> Behaviour:
        """The behaviour for one request to `model`, using up one of its `times`."""
        entry = self._behaviours.get(model)
        if entry is None:
            return NORMAL
        behaviour, left = entry
        if left is None:
            return behaviour
        if left <= 1:
            del self._behaviours[model]
        else:
            self._behaviours[model] = (behaviour, left - 1)
        return behaviour if left >= 1 else NORMAL

    def reset(self) -> None:
        self._behaviours.clear()

    # -- one setter per misbehaviour --------------------------------------------------------

    def answer_normally(self, model: str) -> None:
        self._behaviours.pop(model, None)

    def answer_with(self, model: str, text: str, *, times: int | None = None) -> None:
        """Answer with `text` (other behaviours, such as truncate, still apply to it)."""
        self.behave(model, say=text, times=times)

    def answer_slowly(self, model: str, delay_s: float, *, times: int | None = None) -> None:
        self.behave(model, delay_s=delay_s, times=times)

    def fail(
        self, model: str, status: int, *, retry_after: float | str | None = None,
        retry_after_ms: int | None = None, times: int | None = None,
    ) -> None:
        """Answer with `status`; with `times=N`, fail N times then recover."""
        after = None if retry_after is None else (
            retry_after if isinstance(retry_after, str) else f"{retry_after:g}")
        self.behave(model, status=status, retry_after=after, retry_after_ms=retry_after_ms,
                    times=times)

    def return_invalid_json(self, model: str, *, times: int | None = None) -> None:
        self.behave(model, invalid_json=True, times=times)

    def truncate(self, model: str, *, times: int | None = None) -> None:
        self.behave(model, truncate=True, times=times)

    def refuse(self, model: str, *, times: int | None = None) -> None:
        self.behave(model, refuse=True, times=times)

    def drop_connection(self, model: str, *, after: int = 2, times: int | None = None) -> None:
        """Close the connection after `after` stream events (a plain answer: half its body)."""
        self.behave(model, drop_after=after, times=times)

    def hang_up(self, model: str, *, times: int | None = None) -> None:
        """Close the connection once the request is read, before a byte of the answer."""
        self.behave(model, hang_up=True, times=times)

    def stall(self, model: str, seconds: float, *, after: int = 2,
              times: int | None = None) -> None:
        """Go quiet for `seconds` after `after` stream events (a plain answer: after its
        headers and half its body), then finish: the answer starts in time, ends late."""
        self.behave(model, stall_after=after, stall_s=seconds, times=times)

    def send_malformed_sse(self, model: str, *, times: int | None = None) -> None:
        self.behave(model, malformed_sse=True, times=times)

    def send_malformed_body(self, model: str, *, times: int | None = None) -> None:
        self.behave(model, malformed_body=True, times=times)

    def call_tools_in_parallel(self, model: str, *, again: bool = False,
                               times: int | None = None) -> None:
        """Answer with a call of every tool the request offers, in one answer (as a model does
        for independent tools), unless the request asks for one at a time (OpenAI's
        `parallel_tool_calls: false`, Anthropic's `disable_parallel_tool_use`); with `again`,
        do so after tool results too."""
        self.behave(model, parallel_tools=True, tools_again=again, times=times)

    def keep_calling_tools(self, model: str, *, times: int | None = None) -> None:
        """Call a tool again after a tool result, instead of answering in text."""
        self.behave(model, tools_again=True, times=times)

    def return_logprobs(self, model: str, confidence: float = 0.97) -> None:
        self.behave(model, logprobs=True, confidence=confidence)
