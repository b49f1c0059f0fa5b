"""Session fallback history in Redis: a sorted set of escalation times per session on the
server's clock, trimmed to the last `MAX_EVENTS` and expiring when the session goes quiet."""

from __future__ import annotations

import random
from typing import Any

PREFIX = "taskroute:session:"
MAX_EVENTS = 64
TTL_S = 86400

# KEYS[1] the session; ARGV[1] a unique suffix, ARGV[2] events kept, ARGV[3] the TTL
RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZADD', KEYS[1], now, t[1] .. '.' .. t[2] .. ':' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# The session's escalations within `window` seconds of `now` (seconds, the server's clock).
COUNT_FN = """
local function escalations(key, window, now)
  return redis.call('ZCOUNT', key, now - window, '+inf')
end
"""


class RedisSessionScripts:
    def __init__(self, client: Any, ttl_s: float = TTL_S) -> None:
        self._record = client.register_script(RECORD)
        self._ttl = int(ttl_s)
        self._random = random.Random()

    async def record(self, session: str) -> None:
        await self._record(keys=[PREFIX + session],
                           args=[f"{self._random.getrandbits(48):x}", MAX_EVENTS, self._ttl])
