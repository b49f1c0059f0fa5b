"""What a simulated model is like (`ModelProfile`) and how it is told to misbehave (`Behaviour`).

SIMULATED: nothing here talks to a real model. Profiles shape latency and answer quality;
behaviours are set at runtime by tests to make one model fail in one precise way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one simulated model answers.

    `skill` (0-1) is compared with each prompt's difficulty (derived deterministically from the
    prompt, or written into it as `[difficulty=0.8]`): at or above, the model answers properly;
    below, it hedges ("I'm not sure...") and reports low log-probabilities.
    """

    first_token_s: float = 0.0     # latency before the first token (and before a full answer)
    tokens_per_s: float = 0.0      # 0 means every token at once
    skill: float = 1.0
    calls_tools: bool = True       # call a given tool instead of answering in text
    refuses_hard: bool = False     # below its skill, refuse instead of hedging
    reasoning_tokens: int = 0      # reasoning tokens reported (and counted) for each answer
    context_window: int | None = None  # input + max_tokens above it: the vendor's 400


INSTANT = ModelProfile()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One runtime misbehaviour (the defaults mean: answer normally, as the profile says).

    `times` limits the behaviour to the model's next N requests, after which it recovers and
    answers normally; `None` means until it is told otherwise.
    """

    delay_s: float = 0.0                 # extra wait before the first byte (answer slowly)
    status: int | None = None            # fail with this HTTP status
    retry_after: str | None = None       # Retry-After header sent with `status`
    retry_after_ms: int | None = None    # retry-after-ms header sent with `status`
    times: int | None = None             # only the next N requests misbehave
    invalid_json: bool = False           # broken JSON when JSON was asked for
    truncate: bool = False               # stop early with finish_reason "length"
    refuse: bool = False                 # "I can't help with that."
    drop_after: int | None = None        # close the connection after N stream events / bytes
    hang_up: bool = False                # close the connection before sending a byte
    stall_after: int | None = None       # after N stream events (a plain body: half of it) ...
    stall_s: float = 0.0                 # ... wait this long before sending the rest
    malformed_sse: bool = False          # a stream event whose data is not JSON
    malformed_body: bool = False         # a 200 whose body is not JSON
    logprobs: bool = False               # return logprobs even when not asked
    confidence: float | None = None      # the mean token probability to report in logprobs
    token_delay_s: float | None = None   # override the profile's time between tokens
    parallel_tools: bool = False         # call every tool offered at once (one answer, N calls)
    tools_again: bool = False            # call tools after a tool result too (another round)
    end_delay_s: float = 0.0             # wait between a stream's last event and its end
    say: str | None = None               # answer with this text, not "<model> answers: ..."


NORMAL = Behaviour()
