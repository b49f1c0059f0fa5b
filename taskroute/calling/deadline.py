"""A request's deadline: the time its whole answer must be in by — every attempt, retry,
backoff, failover and escalation included.

Where it comes from, the shortest winning: the policy's `calling: deadline:` (or the task's
own `deadline:`, which replaces it), and the caller's — the gateway's `X-Taskroute-Deadline`
header or `metadata.deadline_s`, in seconds (a library caller: `RequestContext.deadline_s`).
A caller may ask for less time than the policy gives, never more.

Each call gets the time that is left as its timeouts' ceiling; a backoff that would sleep past
the deadline is not slept, and once it has passed nothing more is started (the chain ends as
`ChainTimedOut`, a 504).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from taskroute.exceptions import InvalidRequest
from taskroute.providers.base import Timeouts

HEADER = "X-Taskroute-Deadline"
METADATA_KEY = "deadline_s"
_SMALLEST_S = 0.001   # a timeout of 0 would mean "none" to some clients: never hand one out


@dataclass(frozen=True, slots=True)
class Deadline:
    seconds: float        # what the request was given in all
    at: float             # time.monotonic() by which it must be answered

    @classmethod
    def starting_now(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def timeouts(self, base: Timeouts) -> Timeouts:
        """`base` with no phase longer than the time left."""
        left = max(self.left(), _SMALLEST_S)
        if left >= base.total and left >= base.first_token and left >= base.connect:
            return base
        return Timeouts(min(base.connect, left), min(base.first_token, left),
                        min(base.total, left))


def parse_seconds(text: str, where: str) -> float:
    """A caller's deadline: a positive number of seconds (`2.5`); anything else is a 400."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(f"{where}: expected a positive number of seconds, got {text!r}",
                             param=where)
    return value


def shortest(*seconds: float | None) -> float | None:
    given = [s for s in seconds if s is not None]
    return min(given) if given else None
