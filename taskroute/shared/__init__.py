"""State shared by replicas of the gateway: rate limits, budget holds and spend, session
fallback history, open circuit breakers and the reload broadcast.

`base.py` holds the small Protocols, `memory.py` the per-process implementations (the default,
and what fail-open falls back to), the `redis_*.py` modules the Redis ones (extra
`taskroute[redis]`), composed in `redis_state.py`. This is the one package besides
`taskroute/store/` that imports a database driver (redis).
"""
