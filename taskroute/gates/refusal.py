"""`refusal`: the model declined ("I can't help with that") or hedged ("I'm not sure...").

Only the opening of the answer is read: a refusal or a hedge comes first, and a long answer
that quotes such a phrase further down is not a refusal. The provider's own `refusal` field
(OpenAI structured outputs) counts too. Settings: `{refusal: {hedging: false}}` accepts hedged
answers; `patterns: [...]` adds regular expressions of your own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, allowed_settings, verdict
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

OPENING_CHARS = 300
_APOS = "['\u2019]"
REFUSAL = re.compile(
    rf"\bI(?:{_APOS}m| am) (?:sorry|afraid),? (?:but )?I "
    rf"(?:can{_APOS}?t|cannot|am unable|won{_APOS}t)"
    rf"|\bI (?:can{_APOS}?t|cannot|won{_APOS}t|will not) (?:help|assist|comply|provide|do that"
    r"|answer|fulfil)"
    rf"|\bI(?:{_APOS}m| am) (?:not able|unable) to (?:help|assist|comply|provide|answer)"
    r"|\bAs an AI(?: language model)?,? I (?:can|don|do not|am not)",
    re.IGNORECASE,
)
HEDGING = re.compile(
    rf"\bI(?:{_APOS}m| am) (?:not (?:sure|certain)|unsure)"
    rf"|\bI (?:don{_APOS}t|do not) (?:know|have enough information)"
    r"|\bI cannot be (?:sure|certain)"
    rf"|\bit{_APOS}?s hard to say\b",
    re.IGNORECASE,
)


# The first words a refusal or hedge that the patterns above find in an opening starts with,
# itself or as its preface ("Sorry, but I can't…", "Unfortunately, I cannot…", "Hmm, I'm not
# sure…"). An opening whose first word is none of them is answering: the hold lets it go.
REFUSAL_STARTS = frozenset((
    "i", "i'm", "i’m", "im", "i'd", "i’d", "i've", "i’ve", "i'll", "i’ll", "as", "it", "it's",
    "it’s", "its", "sorry", "unfortunately", "apologies", "my", "regrettably", "hmm", "well",
    "honestly", "thanks", "thank", "while", "although", "no", "oh", "ah", "actually", "again",
))
# The first word once it is whole (something follows it), past markdown or quotes it opens with.
_FIRST_WORD = re.compile(r"[\s*_\"'“”‘>#`-]*([^\s,.;:!?*_\"“”]+)[\s,.;:!?*_\"“”]")


class RefusalGate:
    name = "refusal"
    judges_opening = True  # a live stream's first characters are held for it (calling/hold.py)

    def __init__(self, *, hedging: bool = True, extra: tuple[re.Pattern[str], ...] = ()) -> None:
        self.hedging = hedging
        self.extra = extra

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        message = answer.choices[0].message if answer.choices else None
        if message is not None and message.refusal:
            return verdict(self.name, False, f"the model refused: {message.refusal[:120]}")
        opening = answer.text.lstrip()[:OPENING_CHARS]
        for pattern, what in self._patterns():
            found = pattern.search(opening)
            if found:
                return verdict(self.name, False, f"the answer {what}: {found.group(0)!r}")
        return verdict(self.name, True)

    def settled(self, opening: str) -> bool:
        """Is this opening past becoming a refusal or hedge? Yes once its first word is whole
        and no refusal starts with it (`REFUSAL_STARTS`). Never with patterns of the
        policy's own, which may match anywhere: then the whole hold is kept."""
        if self.extra:
            return False
        first = _FIRST_WORD.match(opening)
        return first is not None and first.group(1).lower() not in REFUSAL_STARTS

    def _patterns(self) -> list[tuple[re.Pattern[str], str]]:
        found = [(REFUSAL, "refuses")]
        if self.hedging:
            found.append((HEDGING, "hedges"))
        found.extend((p, "matches a refusal pattern") for p in self.extra)
        return found


def build(params: Mapping[str, Any], env: GateEnv) -> RefusalGate:
    allowed_settings("refusal", params, ("hedging", "patterns"))
    hedging = params.get("hedging", True)
    if not isinstance(hedging, bool):
        raise ValueError("the refusal gate's 'hedging' is true or false")
    raw = params.get("patterns", [])
    if isinstance(raw, str):
        raw = [raw]
    extra: list[re.Pattern[str]] = []
    for text in raw:
        try:
            extra.append(re.compile(str(text), re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"the refusal gate's pattern {text!r} is not valid: {exc}") from None
    return RefusalGate(hedging=hedging, extra=tuple(extra))
