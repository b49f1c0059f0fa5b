"""Budgets across replicas: today's spend and holds per scope in Redis, reserved and settled by
atomic scripts, so N replicas admitting requests together cannot pass a limit by more than the
day's first request (the rule `SpendTracker` keeps in one process).

One hash per scope and day, `taskroute:spend:{DAY}:KIND:ID` with fields `s` (settled) and `h`
(held), expiring two days on. A settlement is keyed by its hold's id and applied once however
often it is sent (a retry after Redis came back, a reply lost to a timeout). Each hold is also
listed in the day's holds with an expiry; a sweep releases the ones never settled (their
replica died), so a crash does not keep a budget's money held until midnight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskroute.quality.budgets import Scope, day_start

TTL_S = 2 * 86400

# KEYS[1] the day's holds (a sorted set by expiry), then one hash per scope; ARGV[1] the
# amount, ARGV[2] the hashes' TTL, ARGV[3] the hold (`member`), ARGV[4] seconds it may stay
# unsettled, ARGV[4 + i] the limit of KEYS[1 + i] ('' for none). {0} when held, else {i,
# settled, held} for the i-th scope, which refused.
RESERVE = """
local amount = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 2, #KEYS do
  local limit = ARGV[i + 3]
  if limit ~= '' then
    limit = tonumber(limit)
    local v = redis.call('HMGET', KEYS[i], 's', 'h')
    local s = tonumber(v[1]) or 0
    local h = tonumber(v[2]) or 0
    if s >= limit or (s + h > 0 and s + h + amount > limit) then
      return {i - 1, tostring(s), tostring(h)}
    end
  end
end
for i = 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'h', amount)
  redis.call('EXPIRE', KEYS[i], ttl)
end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(ARGV[4]), ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
return {0}
"""

# KEYS[1] the settlement's marker, KEYS[2] the hold's day's holds, then ARGV[1] hashes holding
# it, then the hashes it is paid to; ARGV[2] the hold's amount, ARGV[3] the cost, ARGV[4] the
# TTL, ARGV[5] the hold. 1 when applied, 0 when it already was. The hold is released only if
# it is still listed: one a sweep already released (its replica presumed dead) is not again.
SETTLE = """
local ttl = tonumber(ARGV[4])
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then return 0 end
local held = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
if held > 0 and redis.call('ZREM', KEYS[2], ARGV[5]) == 1 then
  for i = 3, held + 2 do
    if tonumber(redis.call('HINCRBYFLOAT', KEYS[i], 'h', -amount)) < 0 then
      redis.call('HSET', KEYS[i], 'h', 0)
    end
  end
end
for i = held + 3, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 's', cost)
  redis.call('EXPIRE', KEYS[i], ttl)
end
return 1
"""

# KEYS[1] a day's holds. Releases the holds past their expiry (a replica that took them died
# before settling), at most 500 a call; how many it released. The hashes a hold names are in
# the same hash slot as KEYS[1] (the day's tag).
SWEEP = """
local t = redis.call('TIME')
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(t[1]), 'LIMIT', 0, 500)
local released = 0
for _, member in ipairs(expired) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    released = released + 1
    local _, amount, keys = string.match(member, '^([^|]*)|([^|]*)|(.*)$')
    amount = tonumber(amount)
    for key in string.gmatch(keys, '[^\\n]+') do
      if tonumber(redis.call('HINCRBYFLOAT', key, 'h', -amount)) < 0 then
        redis.call('HSET', key, 'h', 0)
      end
    end
  end
end
return released
"""


def day_tag(day: float) -> str:
    return f"{int(day_start(day))}"


def scope_key(scope: Scope, day: float) -> str:
    # the day in braces is a Redis Cluster hash tag: one day's scopes share a slot, so the
    # scripts touching several of them stay atomic there too
    return f"taskroute:spend:{{{day_tag(day)}}}:{scope[0]}:{scope[1]}"


def settled_key(hold_id: str, day: float) -> str:
    return f"taskroute:settled:{{{day_tag(day)}}}:{hold_id}"


def holds_key(day: float) -> str:
    return f"taskroute:holds:{{{day_tag(day)}}}"


def member(hold_id: str, amount: float, scopes: Sequence[Scope], day: float) -> str:
    """A hold as the day's holds list it: its id, amount and the hashes it holds in."""
    return f"{hold_id}|{amount!r}|" + "\n".join(scope_key(s, day) for s in scopes)


class RedisSpendScripts:
    def __init__(self, client: Any) -> None:
        self.reserve = client.register_script(RESERVE)
        self.settle = client.register_script(SETTLE)
        self.sweep = client.register_script(SWEEP)

    @staticmethod
    def reserve_args(hold_id: str, amount: float, scopes: Sequence[Scope],
                     limits: Mapping[Scope, float], now: float,
                     hold_ttl_s: float) -> tuple[list[str], list[Any]]:
        keys = [holds_key(now), *(scope_key(scope, now) for scope in scopes)]
        args: list[Any] = [amount, TTL_S, member(hold_id, amount, scopes, now), hold_ttl_s,
                           *(("" if (lim := limits.get(s)) is None else lim) for s in scopes)]
        return keys, args

    @staticmethod
    def settle_args(hold_id: str, held: Sequence[Scope], hold_day: float, amount: float,
                    paid: Sequence[Scope], cost: float,
                    now: float) -> tuple[list[str], list[Any]]:
        # the marker lives on the day the cost is paid to, beside its hashes
        keys = [settled_key(hold_id, now), holds_key(hold_day),
                *(scope_key(s, hold_day) for s in held), *(scope_key(s, now) for s in paid)]
        return keys, [len(held), amount, cost, TTL_S,
                      member(hold_id, amount, held, hold_day) if held else ""]


# Settled plus held in one scope's hash.
SPENT_FN = """
local function spent(key)
  local v = redis.call('HMGET', key, 's', 'h')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
"""
