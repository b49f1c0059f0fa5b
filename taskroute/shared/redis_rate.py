"""Per-key rate limits in Redis: GCRA (the generic cell rate algorithm) in one atomic script,
on the server's clock so replicas with drifting clocks agree. One key per caller holds its
theoretical arrival time and expires when idle."""

from __future__ import annotations

import math
from typing import Any

PREFIX = "taskroute:rate:"

# One request for `key` at `now` (ms): -1 when allowed, else the ms until one would be.
# `period` is the ms between requests at the steady rate, `burst` how many may come at once.
GCRA_FN = """
local function gcra(key, period, burst, now)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new = tat + period
  local allow_at = new - burst * period
  if now < allow_at then return math.ceil(allow_at - now) end
  redis.call('SET', key, tostring(new), 'PX', math.ceil(new - now) + 1)
  return -1
end
"""
NOW_MS = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS[1] the caller's key; ARGV[1] the period, ARGV[2] the burst.
GCRA = NOW_MS + GCRA_FN + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms)"


def args_for(rpm: int) -> list[float]:
    return [60_000.0 / rpm, rpm]


class RedisRate:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(GCRA)
        self._client = client

    @staticmethod
    def parse(reply: Any) -> float | None:
        wait_ms = int(reply)
        return None if wait_ms < 0 else float(max(1, math.ceil(wait_ms / 1000)))

    async def take(self, key: str, rpm: int) -> float | None:
        return self.parse(await self._script(keys=[PREFIX + key], args=args_for(rpm)))
