"""The one round trip before deciding, as one script: the rate-limit token (GCRA), the session's
escalations and today's spend per budget scope. One script rather than a pipeline of five
commands: the same single round trip, half the client's work (bench/redis_driver.py), and the
reads see the state the token was taken in.

(On Redis Cluster a script's keys must share a slot; there this would become a pipeline of one
script per slot — see docs/scaling.md.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskroute.quality.budgets import Scope
from taskroute.shared import redis_rate, redis_sessions, redis_spend

UNUSED = "taskroute:unused"   # the key slot of a part a request does not need

# KEYS[1] the rate key, KEYS[2] the session's, KEYS[3..] one hash per scope; ARGV[1] '1' to
# take a token, ARGV[2] its period, ARGV[3] its burst, ARGV[4] '1' to count escalations,
# ARGV[5] the window. Returns {wait ms or -1, escalations, spent per scope as text}.
PREFETCH = (redis_rate.NOW_MS + redis_rate.GCRA_FN + redis_sessions.COUNT_FN
            + redis_spend.SPENT_FN + """
local out = {-1, 0}
if ARGV[1] == '1' then
  out[1] = gcra(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now_ms)
end
if ARGV[4] == '1' then
  out[2] = escalations(KEYS[2], tonumber(ARGV[5]), now_ms / 1000)
end
for i = 3, #KEYS do out[i] = tostring(spent(KEYS[i])) end
return out
""")


class RedisPrefetch:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(PREFETCH)

    async def __call__(self, rate_key: str | None, rpm: int | None, session: str | None,
                       window_s: float, scopes: Sequence[Scope],
                       now: float) -> tuple[float | None, int, list[float]]:
        """(seconds to wait or None, the session's escalations, spent per scope)."""
        take = rate_key is not None and bool(rpm)
        period, burst = redis_rate.args_for(int(rpm)) if take and rpm else (0.0, 0.0)
        keys = [redis_rate.PREFIX + rate_key if take and rate_key else UNUSED,
                redis_sessions.PREFIX + session if session else UNUSED,
                *(redis_spend.scope_key(scope, now) for scope in scopes)]
        reply = await self._script(keys=keys, args=[
            "1" if take else "0", period, burst, "1" if session else "0", window_s])
        wait = redis_rate.RedisRate.parse(reply[0]) if take else None
        return wait, int(reply[1]), [float(x) for x in reply[2:]]
