"""Features of a cheap answer and of its prompt-answer pair, for the learned escalation gate.

Pure Python (no numpy): the gate runs them on the call path, after every cheap answer. The
training code (`taskroute.evaluate.escalation`) calls the same `answer_features`, so what a
gate file was trained on is what it sees. Change `ANSWER_FEATURES_VERSION` whenever the output
changes, and retrain.

What they read:
- the form the prompt asks for: options offered (`A)`, `B.` ... or `Option 1/2`), "only a
  single choice", an `Answer:` marker, code (a function to write, `assert name(...)` tests);
- whether the answer gives it: one offered choice letter, said plainly and first, or several
  (self-contradiction), or none; code that parses (`ast.parse`, nothing executed) and defines
  the function the tests call, with that many arguments; a Python answer where Python is asked;
- its length against the prompt's demand (log characters; short where an essay is asked);
- hedging ("I'm not sure", "might", ...) and refusal openings;
- the model's own log-probability confidence, where the provider returned it;
- agreement with an earlier cheap answer to the same prompt, where the cascade has one;
- which model answered (`model=<name>`), since models differ in how often they are right.

Bounded work: the prompt's last `PROMPT_TAIL` characters (few-shot examples come first, the
question last) and the answer's first `ANSWER_HEAD` are read.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Sequence

__all__ = ["ANSWER_FEATURES_VERSION", "answer_features", "final_choice", "unwrap"]

ANSWER_FEATURES_VERSION = 1
PROMPT_TAIL = 3000
ANSWER_HEAD = 6000

_OPTION = re.compile(r"^\s*\(?([A-H])[).:]\s+\S", re.MULTILINE)
_OPTION_N = re.compile(r"\bOption\s+([1-4])\s*[:.)]", re.IGNORECASE)
_SINGLE = re.compile(r"single choice|only the letter|letter of the correct|answer with the letter",
                     re.IGNORECASE)
_ASSERT = re.compile(r"assert\s+(?:not\s+)?\(?\s*(\w+)\s*\(")
_WRITE_FN = re.compile(r"\b(?:write|implement|create)\b.{0,40}\bfunction\b", re.IGNORECASE)
_LETTER_START = re.compile(r"^\W{0,3}(?:answer\s*(?:is)?\s*:?\s*)?\(?([A-H])\b(?![a-z'])",
                           re.IGNORECASE)
_LETTER_ANY = re.compile(r"(?<![A-Za-z'])\(?([A-H])\)(?![A-Za-z])|\b(?:answer|option|choice)"
                         r"\s*(?:is\s*)?:?\s*\(?([A-H1-4])\b", re.IGNORECASE)
_CODE_BLOCK = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(([^)]*)\)", re.MULTILINE)
_HEDGE = re.compile(r"\b(?:I'm not sure|I am not sure|I don't know|not certain|unclear|"
                    r"cannot determine|can't determine|it depends)\b", re.IGNORECASE)
_SOFT = re.compile(r"\b(?:might|maybe|perhaps|possibly|probably|I think|I believe|I guess|"
                   r"however|but)\b", re.IGNORECASE)
_REFUSE = re.compile(r"^\W*(?:I'm sorry|I am sorry|I cannot|I can't|I apologi[sz]e|As an AI|"
                     r"Unfortunately)", re.IGNORECASE)
_OTHER_LANG = re.compile(r"```\s*(?:javascript|js|java|c\+\+|cpp|c#|csharp|ruby|go|rust|php)\b",
                         re.IGNORECASE)


def unwrap(text: str) -> str:
    """RouterBench stores texts as a Python list literal (`['...']`): its strings, joined."""
    if text.startswith(("['", '["')) and text.endswith(("']", '"]')):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    return text


def _offered(prompt: str) -> list[str]:
    # the options of the last question: few-shot examples before it offer their own
    last = prompt.rfind("Answer:", 0, max(len(prompt) - 12, 0))
    tail = prompt[last:] if last > 0 else prompt
    letters = list(dict.fromkeys(_OPTION.findall(tail)))
    if letters:
        return letters
    return list(dict.fromkeys(_OPTION_N.findall(tail)))


def final_choice(answer: str, offered: Sequence[str]) -> tuple[str | None, int]:
    """The choice the answer gives (its first plain letter, else the first it names), and how
    many different offered choices it names."""
    head = answer.strip()[:400]
    named = {(a or b).upper() for a, b in _LETTER_ANY.findall(head)}
    start = _LETTER_START.match(head)
    first = start.group(1).upper() if start else None
    if first is None and len(head) <= 3 and head[:1].isdigit():
        first = head[:1]
    if first is not None:
        named.add(first)
    named &= set(offered) if offered else named
    choice = first if first in named else (sorted(named)[0] if len(named) == 1 else None)
    return choice, len(named)


def _code(answer: str) -> tuple[str, str]:
    blocks = _CODE_BLOCK.findall(answer)
    if blocks:
        lang, body = max(blocks, key=lambda b: len(b[1]))
        return lang.lower(), body
    return "", answer if _DEF.search(answer) else ""


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _arity(prompt: str, name: str) -> int | None:
    call = re.search(re.escape(name) + r"\s*\(", prompt)
    if call is None:
        return None
    depth, count, seen = 1, 0, False
    for ch in prompt[call.end():call.end() + 2000]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                break
        elif ch == "," and depth == 1:
            count += 1
        elif not ch.isspace():
            seen = True
    return count + 1 if seen else 0


def answer_features(prompt: str, answer: str, *, model: str = "",
                    logprob: float | None = None,
                    previous: Sequence[str] = ()) -> dict[str, float]:
    """The features of `answer` to `prompt` (see the module docstring), by name."""
    prompt = unwrap(prompt)[-PROMPT_TAIL:]
    answer = unwrap(answer)[:ANSWER_HEAD]
    text = answer.strip()
    f: dict[str, float] = {"bias": 1.0}
    if model:
        f[f"model={model}"] = 1.0
    n = len(text)
    f["log_chars"] = math.log1p(n) / 8
    f["empty"] = float(n == 0)
    f["prompt_log_chars"] = math.log1p(len(prompt)) / 8
    f["lines"] = min(text.count("\n"), 60) / 60
    offered = _offered(prompt)
    single = bool(_SINGLE.search(prompt))
    f["asks_choice"] = float(bool(offered))
    f["asks_single"] = float(single)
    f["asks_answer_marker"] = float(prompt.rstrip().endswith(("Answer:", "A:")))
    tests = _ASSERT.findall(prompt)
    asks_code = bool(tests) or bool(_WRITE_FN.search(prompt))
    f["asks_code"] = float(asks_code)
    if offered:
        choice, named = final_choice(text, offered)
        f["choice_given"] = float(choice is not None)
        f["choice_first"] = float(bool(_LETTER_START.match(text[:400])))
        f["choice_many"] = float(named > 1)
        f["choice_bare"] = float(choice is not None and n <= 4)
        f["choice_long"] = float(n > 40)
        if single:
            f["single_but_long"] = float(n > 40)
        if choice is not None:
            f[f"choice={choice}"] = 1.0
        if previous:
            others = [final_choice(unwrap(p).strip(), offered)[0] for p in previous]
            known = [o for o in others if o is not None]
            f["has_previous"] = 1.0
            f["agrees_previous"] = float(bool(known) and choice is not None
                                         and all(o == choice for o in known))
            f["disagrees_previous"] = float(bool(known) and choice is not None
                                            and any(o != choice for o in known))
            if model:  # how much agreement says depends on who agrees
                f[f"agrees_previous*{model}"] = f["agrees_previous"]
                f[f"choice_given*{model}"] = f["choice_given"]
    if asks_code:
        lang, code = _code(answer)
        f["code_block"] = float(bool(code))
        f["code_other_language"] = float(bool(_OTHER_LANG.search(answer))
                                         or lang in {"javascript", "js", "java", "cpp", "c++"})
        parses = bool(code) and _parses(code)
        f["code_parses"] = float(parses)
        defs = dict(_DEF.findall(code)) if code else {}
        f["code_defines"] = float(bool(defs))
        if tests:
            wanted = tests[0]
            f["code_defines_asked"] = float(wanted in defs)
            arity = _arity(prompt, wanted)
            if wanted in defs and arity is not None:
                params = [p for p in defs[wanted].split(",") if p.strip()
                          and not p.strip().startswith("*")]
                f["code_arity_match"] = float(len(params) == arity)
        f["code_returns"] = float("return" in code or "yield" in code)
        f["code_prints_only"] = float("print(" in code and "return" not in code)
        if previous:
            f["has_previous"] = 1.0
    f["hedge"] = float(bool(_HEDGE.search(text[:600])))
    f["soft_hedges"] = min(len(_SOFT.findall(text[:1500])), 5) / 5
    f["refusal"] = float(bool(_REFUSE.match(text)))
    if logprob is not None:
        f["has_logprob"] = 1.0
        f["logprob_conf"] = max(0.0, min(1.0, logprob))
    return f
