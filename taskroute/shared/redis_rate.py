"""Per-key rate limits in Redis: GCRA (the generic cell rate algorithm) in one atomic script,
on the server's clock so replicas with drifting clocks agree. One key per caller holds its
theoretical arrival time and expires when idle."""

from __future__ import annotations

import math
from typing import Any

PREFIX = "taskroute:rate:"

# KEYS[1] the caller's key; ARGV[1] ms between requests at the steady rate, ARGV[2] the burst.
# Returns -1 when allowed, else the ms until a request would be.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new = tat + period
local allow_at = new - burst * period
if now < allow_at then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], tostring(new), 'PX', math.ceil(new - now) + 1)
return -1
"""


class RedisRate:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(GCRA)
        self._client = client

    async def queue(self, pipe: Any, key: str, rpm: int) -> None:
        await self._script(keys=[PREFIX + key], args=[60_000.0 / rpm, rpm], client=pipe)

    @staticmethod
    def parse(reply: Any) -> float | None:
        wait_ms = int(reply)
        return None if wait_ms < 0 else float(max(1, math.ceil(wait_ms / 1000)))

    async def take(self, key: str, rpm: int) -> float | None:
        return self.parse(await self._script(keys=[PREFIX + key], args=[60_000.0 / rpm, rpm]))
