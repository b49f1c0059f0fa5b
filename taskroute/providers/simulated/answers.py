"""The simulated model's mind: from a wire-neutral `Ask` to a deterministic `Answer`.

SIMULATED. Everything is derived from the prompt (no randomness), so tests can assert on it:
the same prompt to the same model gives the same answer, token for token.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from taskroute.providers.simulated.profiles import Behaviour, ModelProfile

REFUSAL = "I can't help with that."
HEDGE = "I'm not sure about this, but it might be"
Finish = Literal["stop", "length", "tool_calls"]

_DIFFICULTY = re.compile(r"\[difficulty=([01](?:\.\d+)?)\]")
_TOKEN = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request asks, whichever wire format it came in."""

    model: str
    prompt: str                                  # the last user turn's text
    input_text: str = ""                         # every turn's text, for token counts
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"                    # auto | none | required | <a tool's name>
    after_tool_result: bool = False              # the last turn is a tool result
    tool_rounds: int = 0                         # assistant turns that called tools so far
    parallel_tools: bool = True                  # several tool calls in one answer allowed
    json_kind: str = "text"                      # text | json_object | json_schema
    schema: dict[str, Any] | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    thinking: bool = False                       # extended thinking asked for (Anthropic)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str                               # JSON text


@dataclass(frozen=True, slots=True)
class Answer:
    tokens: tuple[str, ...]                      # the text, split as it is streamed
    finish: Finish
    prompt_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    stop_sequence: str | None = None
    confidence: float = 0.95
    logprobs: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    cache_read_tokens: int = 0                   # of prompt_tokens, read from the cache
    cache_write_tokens: int = 0                  # of prompt_tokens, written to the cache
    reasoning_tokens: int = 0                    # of completion_tokens, spent thinking

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return (len(self.tokens) + sum(len(c.arguments) // 4 + 1 for c in self.tool_calls)
                + self.reasoning_tokens)

    def token_logprobs(self) -> list[dict[str, Any]]:
        """OpenAI-shaped `logprobs.content` entries, each at log(confidence)."""
        logprob = math.log(max(self.confidence, 1e-6))
        return [
            {"token": t, "logprob": logprob, "bytes": list(t.encode()), "top_logprobs": []}
            for t in self.tokens
        ]


def difficulty(prompt: str) -> float:
    """How hard a prompt is, 0-1: a `[difficulty=x]` tag, else a stable hash of the prompt."""
    tagged = _DIFFICULTY.search(prompt)
    if tagged:
        return float(tagged.group(1))
    digest = hashlib.sha256(prompt.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def plan(ask: Ask, profile: ModelProfile, behaviour: Behaviour) -> Answer:
    prompt_tokens = max(1, len(ask.input_text or ask.prompt) // 4)
    able = profile.skill >= difficulty(ask.prompt)
    confidence = behaviour.confidence
    if confidence is None:
        confidence = 0.97 if able else 0.45
    logprobs = ask.logprobs or behaviour.logprobs
    if _wants_tool(ask, profile, behaviour) and not behaviour.refuse:
        return Answer((), "tool_calls", prompt_tokens, _tool_calls(ask, behaviour),
                      confidence=confidence, logprobs=logprobs)
    if behaviour.refuse or (not able and profile.refuses_hard):
        text = REFUSAL
    else:
        text = _text(ask, able, behaviour)
    tokens = tuple(_TOKEN.findall(text)) or (text,)
    finish: Finish = "stop"
    stop_sequence = None
    for stop in ask.stop:
        cut = text.find(stop)
        if stop and cut >= 0:
            tokens, stop_sequence = tuple(_TOKEN.findall(text[:cut])), stop
    limit = ask.max_tokens
    if behaviour.truncate:
        limit = max(1, len(tokens) // 2) if limit is None else min(limit, max(1, len(tokens) // 2))
    if limit is not None and len(tokens) > limit:
        tokens, finish = tokens[:limit], "length"
    return Answer(tokens, finish, prompt_tokens, stop_sequence=stop_sequence,
                  confidence=confidence, logprobs=logprobs)


def _wants_tool(ask: Ask, profile: ModelProfile, behaviour: Behaviour) -> bool:
    if not ask.tools or ask.tool_choice == "none":
        return False
    if ask.after_tool_result and not behaviour.tools_again:
        return False
    return profile.calls_tools or ask.tool_choice != "auto"


def _tool_calls(ask: Ask, behaviour: Behaviour) -> tuple[ToolCall, ...]:
    """One call of the chosen (or first) tool; with `parallel_tools`, of every tool."""
    if behaviour.parallel_tools and ask.parallel_tools and ask.tool_choice in ("auto",
                                                                                 "required"):
        return tuple(_tool_call(ask, tool) for tool in ask.tools)
    tool = next((t for t in ask.tools if t.name == ask.tool_choice), ask.tools[0])
    return (_tool_call(ask, tool),)


def _tool_call(ask: Ask, tool: Tool) -> ToolCall:
    arguments = json.dumps(example(tool.parameters, _subject(ask.prompt)))
    again = f"|{ask.tool_rounds}" if ask.tool_rounds else ""  # ids unique in a conversation
    digest = hashlib.sha256(f"{ask.model}|{ask.prompt}|{tool.name}{again}".encode()).hexdigest()
    return ToolCall(id=f"call_{digest[:24]}", name=tool.name, arguments=arguments)


def _subject(prompt: str) -> str:
    words = _DIFFICULTY.sub("", prompt).split()
    return " ".join(words[:8]) or "nothing"


def _text(ask: Ask, able: bool, behaviour: Behaviour) -> str:
    subject = _subject(ask.prompt)
    if behaviour.say is not None:
        prose = behaviour.say
    elif ask.after_tool_result:
        prose = f"Based on the tool result, here is the answer about {subject}."
    elif able:
        prose = f"{ask.model} answers: {subject}."
    else:
        prose = f"{HEDGE} something about {subject}."
    if ask.json_kind == "text":
        return prose
    value = example(ask.schema, prose) if ask.schema else {"answer": prose}
    text = json.dumps(value)
    if behaviour.invalid_json:
        text = text[: max(1, len(text) // 2)] + " ...oops"
    return text


def example(schema: Any, seed: str) -> Any:
    """A small value valid for a simple JSON Schema (types, properties, enum, const, items)."""
    if not isinstance(schema, dict):
        return seed
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example(schema[key][0], seed)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example(sub, seed) for name, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items"), seed) for _ in range(schema.get("minItems", 1))]
    if kind in ("integer", "number"):
        low = schema.get("minimum") or schema.get("exclusiveMinimum") or 0
        value = max(1, int(low) + (1 if "exclusiveMinimum" in schema else 0))
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return seed[: schema.get("maxLength", len(seed))]
