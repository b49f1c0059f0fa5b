"""Opening Redis: the driver imported on first use (extra `taskroute[redis]`), short timeouts
so a slow Redis counts as down instead of slowing every request, and the errors that mean so."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskroute.exceptions import ConfigError

ENV_REDIS_URL = "TASKROUTE_REDIS_URL"
OP_TIMEOUT_S = 0.25   # a command slower than this counts as Redis being down (fail open/closed)


def driver() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigError(
            "shared state in Redis needs redis-py: pip install 'taskroute[redis]'") from None
    return redis.asyncio


def down_errors() -> tuple[type[BaseException], ...]:
    """What a command raises when Redis is unreachable, restarting or slow."""
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError, OSError, asyncio.TimeoutError)


def connect(url: str, *, timeout_s: float | None = OP_TIMEOUT_S) -> Any:
    """A client for `url` (redis://host:port/db); `timeout_s` None for a pub/sub listener,
    which waits for messages as long as it likes."""
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"the Redis URL must start with redis://, rediss:// or unix://, not "
                          f"{masked(url)!r}")
    return driver().Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=OP_TIMEOUT_S * 4,
        health_check_interval=10 if timeout_s is None else 0, decode_responses=True)


def masked(url: str) -> str:
    """`url` with its password, if any, shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
