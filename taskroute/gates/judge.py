"""`{judge: {model: openai/gpt-4.1, min score: 7}}`: another model grades the answer from 1 to
10; below `min score` the answer is rejected. Off unless the policy names it. The judge's own
call is paid for and its cost is carried on the verdict; when the judge itself fails, the
answer passes with a note (a broken judge must not block every answer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from taskroute.exceptions import UpstreamError
from taskroute.gates.base import GateEnv, ModelCaller, allowed_settings, number_setting, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

INSTRUCTIONS = (
    "You grade answers. Read the question and the answer, then reply with one integer from 1 "
    "(useless or wrong) to 10 (correct, complete and clear), and nothing else."
)
_SCORE = re.compile(r"\b(10|[1-9])\b")
_SHOWN_CHARS = 6000


def grading_request(question: str, answer: str) -> ChatRequest:
    return ChatRequest.from_prompt(
        f"Question:\n{question[:_SHOWN_CHARS]}\n\nAnswer:\n{answer[:_SHOWN_CHARS]}\n\nScore:",
        system=INSTRUCTIONS, max_tokens=4, temperature=0,
    )


def parse_score(text: str) -> int | None:
    found = _SCORE.search(text)
    return int(found.group(1)) if found else None


class JudgeGate:
    name = "judge"

    def __init__(self, model: str, min_score: float, call_model: ModelCaller | None) -> None:
        self.model, self.min_score, self._call = model, min_score, call_model

    async def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        if self._call is None:
            return verdict(self.name, True, "no way to call the judge model; not checked")
        try:
            graded, cost = await self._call(
                self.model, grading_request(request.last_user_text, answer.text)
            )
        except UpstreamError as exc:
            return verdict(self.name, True, f"the judge {self.model} failed ({exc}); not checked")
        score = parse_score(graded.text)
        if score is None:
            return verdict(self.name, True, f"the judge gave no score ({graded.text[:40]!r})",
                           cost_usd=cost)
        ok = score >= self.min_score
        return verdict(
            self.name, ok, f"{self.model} scored it {score}/10, needs {self.min_score:g}",
            confidence=score / 10, cost_usd=cost,
        )


def build(params: Mapping[str, Any], env: GateEnv) -> JudgeGate:
    allowed_settings("judge", params, ("model", "min_score"))
    model = params.get("model")
    if not isinstance(model, str) or model not in env.policy.models:
        known = ", ".join(env.policy.models)
        raise ValueError(f"the judge gate needs 'model', one of the policy's models ({known})")
    min_score = number_setting("judge", params, "min_score", default=7, low=1, high=10)
    return JudgeGate(model, min_score if min_score is not None else 7.0, env.call_model)
