"""How sure an answer is, for the speculative race's `min confidence`, and what said so.

The first of these that is available decides (measured beats estimated):

1. **A gate's own confidence** (source `gate:<name>`): the lowest one a gate reported — the
   `logprob` gate's, or a `judge` gate's score / 10 when the task's gates name a judge model.
2. **The answer's token log-probabilities** (source `logprobs`): exp(mean token logprob), the
   geometric mean of the token probabilities (`gates.logprob.answer_confidence`). taskroute
   asks OpenAI-style providers for them whenever a race or gate needs them.
3. **An estimate from the answer itself** (source `estimate`), for providers that return no
   log probabilities (Anthropic's Messages API):

       estimate = 0.95 × gates × finish × wording × length

   - `gates`: 1 when every gate passed, else 0.
   - `finish`: 1 for `stop` / `tool_calls`; 0.6 for `length` (cut off); 0 for
     `content_filter`; 0.8 when the provider gave no reason.
   - `wording`: 0 when the opening refuses (`gates.refusal.REFUSAL`, or the provider's own
     `refusal` field); × 0.5 when it opens with a hedge (`gates.refusal.HEDGING`: "I'm not
     sure", "I don't know", ...); × 0.9 for each soft hedge anywhere ("might", "maybe",
     "perhaps", "possibly", "probably", "I think", "I believe", "I guess"), three at most.
   - `length`: r = the answer's output tokens / the task's typical output
     (`tasks.TYPICAL_OUTPUT_TOKENS`, else `DEFAULT_OUTPUT_TOKENS`): 1 for 1/64 ≤ r ≤ 4;
     0.9 below (a one-liner where answers are usually long); above 4,
     max(0.7, 1 − 0.1 × log2(r / 4)) (rambling); 0 for no text and no tool call.

   0.95 is the ceiling: without the model's own word the estimate is never certain, so a
   `min confidence` above 0.95 needs logprobs or a judge. The factor furthest below 1 is the
   signal that decided, and the reason names it.

   **With a judge** (`race: {judge: <model>}`, source `judge` or `estimate`): when the
   estimate clears `min confidence`, that model grades the answer from 1 to 10 (the `judge`
   gate's call, paid for on the verdict) and the confidence is min(estimate, score / 10): the
   judge catches a wrong answer said plainly, the estimate a hedged one the judge let pass. A
   judge that fails or gives no score leaves the estimate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from taskroute.gates.logprob import answer_confidence
from taskroute.gates.refusal import HEDGING, OPENING_CHARS, REFUSAL
from taskroute.records import GateVerdict
from taskroute.response import ChatResponse
from taskroute.signals import estimate_tokens
from taskroute.tasks import DEFAULT_OUTPUT_TOKENS, TYPICAL_OUTPUT_TOKENS

CEILING = 0.95
FINISH = {"stop": 1.0, "tool_calls": 1.0, "function_call": 1.0, "length": 0.6,
          "content_filter": 0.0}
NO_FINISH = 0.8
HEDGE_FACTOR = 0.5
SOFT_HEDGE_FACTOR = 0.9
SOFT_HEDGES_COUNTED = 3
SHORT_RATIO, LONG_RATIO = 1 / 64, 4.0
SHORT_FACTOR, LONG_FLOOR = 0.9, 0.7
SOFT_HEDGE = re.compile(
    r"\b(?:might|maybe|perhaps|possibly|probably|I think|I believe|I guess)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Confidence:
    value: float
    source: str          # "gate:<name>", "logprobs" or "estimate"
    detail: str          # the signal that decided, in words


def assess(verdicts: Sequence[GateVerdict], answer: ChatResponse, task: str) -> Confidence:
    """How sure `answer` (to a request of class `task`) is; see the module's docstring."""
    reported = [v for v in verdicts if v.confidence is not None]
    if reported:
        low = min(reported, key=lambda v: v.confidence or 0.0)
        return Confidence(low.confidence or 0.0, f"gate:{low.gate}", low.reason or low.gate)
    measured = answer_confidence(answer)
    if measured is not None:
        return Confidence(measured, "logprobs", "exp(mean token logprob)")
    return estimate(verdicts, answer, task)


def estimate(verdicts: Sequence[GateVerdict], answer: ChatResponse, task: str) -> Confidence:
    """The estimate from gates, finish reason, wording and length (module docstring)."""
    factors = [
        ("gates", _gates(verdicts)),
        ("finish", _finish(answer)),
        ("wording", _wording(answer)),
        ("length", _length(answer, task)),
    ]
    value = CEILING * math.prod(f for _, (f, _) in factors)
    name, (low, why) = min(factors, key=lambda item: item[1][0])
    if low >= 1.0:
        return Confidence(value, "estimate", "no warning sign: gates passed, finished, "
                                             "no hedging, a typical length")
    return Confidence(value, "estimate", f"{name} ×{low:.2f}: {why}")


def graded(estimated: Confidence, verdict: GateVerdict) -> Confidence:
    """The estimate with a judge's verdict on the same answer (module docstring)."""
    if verdict.confidence is None or verdict.confidence >= estimated.value:
        return estimated
    return Confidence(verdict.confidence, "judge", verdict.reason)


def _gates(verdicts: Sequence[GateVerdict]) -> tuple[float, str]:
    failed = [v.gate for v in verdicts if not v.passed]
    return (0.0, f"rejected by {', '.join(failed)}") if failed else (1.0, "")


def _finish(answer: ChatResponse) -> tuple[float, str]:
    reason = answer.finish_reason
    if reason is None:
        return NO_FINISH, "no finish reason"
    return FINISH.get(reason, NO_FINISH), f"finish reason {reason}"


def _wording(answer: ChatResponse) -> tuple[float, str]:
    message = answer.choices[0].message if answer.choices else None
    opening = answer.text.lstrip()[:OPENING_CHARS]
    refused = REFUSAL.search(opening)
    if (message is not None and message.refusal) or refused:
        return 0.0, f"refuses ({refused.group(0)!r})" if refused else "refuses"
    factor, said = 1.0, []
    hedge = HEDGING.search(opening)
    if hedge:
        factor *= HEDGE_FACTOR
        said.append(f"hedges ({hedge.group(0)!r})")
    soft = SOFT_HEDGE.findall(answer.text)[:SOFT_HEDGES_COUNTED]
    if soft:
        factor *= SOFT_HEDGE_FACTOR ** len(soft)
        said.append(f"soft hedges {', '.join(repr(s) for s in soft)}")
    return factor, "; ".join(said)


def _length(answer: ChatResponse, task: str) -> tuple[float, str]:
    if answer.tool_calls:
        return 1.0, ""
    if not answer.text.strip():
        return 0.0, "no answer"
    usage = answer.usage
    tokens = usage.completion_tokens if usage and usage.completion_tokens else (
        estimate_tokens(answer.text))
    typical = TYPICAL_OUTPUT_TOKENS.get(task, DEFAULT_OUTPUT_TOKENS)
    ratio = tokens / typical
    said = f"{tokens} tokens where {task} answers are typically {typical}"
    if ratio < SHORT_RATIO:
        return SHORT_FACTOR, said
    if ratio > LONG_RATIO:
        return max(LONG_FLOOR, 1 - 0.1 * math.log2(ratio / LONG_RATIO)), said
    return 1.0, ""
