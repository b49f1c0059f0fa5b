"""Budgets across replicas: today's spend and holds per scope in Redis, reserved and settled by
atomic scripts, so N replicas admitting requests together cannot pass a limit by more than the
day's first request (the rule `SpendTracker` keeps in one process).

One hash per scope and day, `taskroute:spend:{DAY}:KIND:ID` with fields `s` (settled) and `h`
(held), expiring two days on. A settlement is keyed by its hold's id and applied once however
often it is sent (a retry after Redis came back, a reply lost to a timeout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskroute.quality.budgets import Scope, day_start

TTL_S = 2 * 86400

# KEYS: one hash per scope; ARGV[1] amount, ARGV[1 + i] the limit of KEYS[i] ('' for none),
# then the TTL. Returns {0} when held, else {i, settled, held} for the scope that refused.
RESERVE = """
local amount = tonumber(ARGV[1])
local ttl = tonumber(ARGV[#ARGV])
for i = 1, #KEYS do
  local limit = ARGV[i + 1]
  if limit ~= '' then
    limit = tonumber(limit)
    local v = redis.call('HMGET', KEYS[i], 's', 'h')
    local s = tonumber(v[1]) or 0
    local h = tonumber(v[2]) or 0
    if s >= limit or (s + h > 0 and s + h + amount > limit) then
      return {i, tostring(s), tostring(h)}
    end
  end
end
for i = 1, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'h', amount)
  redis.call('EXPIRE', KEYS[i], ttl)
end
return {0}
"""

# KEYS[1] the settlement's marker, then ARGV[1] hashes holding it, then the hashes it is paid
# to; ARGV[2] the hold's amount, ARGV[3] the cost, ARGV[4] the TTL. 1 when applied, 0 when it
# already was.
SETTLE = """
local ttl = tonumber(ARGV[4])
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then return 0 end
local held = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
for i = 2, held + 1 do
  if tonumber(redis.call('HINCRBYFLOAT', KEYS[i], 'h', -amount)) < 0 then
    redis.call('HSET', KEYS[i], 'h', 0)
  end
end
for i = held + 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 's', cost)
  redis.call('EXPIRE', KEYS[i], ttl)
end
return 1
"""


def day_tag(day: float) -> str:
    return f"{int(day_start(day))}"


def scope_key(scope: Scope, day: float) -> str:
    # the day in braces is a Redis Cluster hash tag: one day's scopes share a slot, so the
    # scripts touching several of them stay atomic there too
    return f"taskroute:spend:{{{day_tag(day)}}}:{scope[0]}:{scope[1]}"


def settled_key(hold_id: str, day: float) -> str:
    return f"taskroute:settled:{{{day_tag(day)}}}:{hold_id}"


class RedisSpendScripts:
    def __init__(self, client: Any) -> None:
        self.reserve = client.register_script(RESERVE)
        self.settle = client.register_script(SETTLE)

    @staticmethod
    def reserve_args(amount: float, scopes: Sequence[Scope], limits: Mapping[Scope, float],
                     now: float) -> tuple[list[str], list[Any]]:
        keys = [scope_key(scope, now) for scope in scopes]
        args: list[Any] = [amount, *(("" if (lim := limits.get(s)) is None else lim)
                                     for s in scopes), TTL_S]
        return keys, args

    @staticmethod
    def settle_args(hold_id: str, held: Sequence[Scope], hold_day: float, amount: float,
                    paid: Sequence[Scope], cost: float,
                    now: float) -> tuple[list[str], list[Any]]:
        # the marker lives on the day the cost is paid to, beside its hashes
        keys = [settled_key(hold_id, now), *(scope_key(s, hold_day) for s in held),
                *(scope_key(s, now) for s in paid)]
        return keys, [len(held), amount, cost, TTL_S]


# Settled plus held in one scope's hash.
SPENT_FN = """
local function spent(key)
  local v = redis.call('HMGET', key, 's', 'h')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
"""
