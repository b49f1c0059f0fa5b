"""Optional bearer keys and per-key rate limits.

Keys are compared in constant time against every configured key, and are never logged or echoed:
a request is identified by a short fingerprint of its key. Health endpoints stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Sequence

from taskroute.exceptions import AuthenticationFailed, Secret, TooManyRequests

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def fingerprint(key: str) -> str:
    """A short, stable id for a key, safe to log."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Authenticator:
    def __init__(self, keys: Sequence[Secret]) -> None:
        self._keys = [(k.reveal().encode(), fingerprint(k.reveal())) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, authorization: str | None, x_api_key: str | None = None) -> str | None:
        """The key's fingerprint; None when authentication is off. Raises when it fails.
        Accepts `Authorization: Bearer KEY` (OpenAI clients) or `x-api-key` (Anthropic's)."""
        if not self._keys:
            return None
        given = x_api_key
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer":
                given = token.strip()
        if not given:
            raise AuthenticationFailed(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key'")
        candidate = given.encode()
        found: str | None = None
        for key, key_id in self._keys:  # every key is compared: the time does not tell which
            if hmac.compare_digest(candidate, key):
                found = key_id
        if found is None:
            raise AuthenticationFailed("invalid API key")
        return found


class RateLimiter:
    """A token bucket per key: `rpm` requests a minute, bursts up to `rpm`."""

    def __init__(self, rpm: int | None) -> None:
        self.rpm = rpm
        self._rate = (rpm or 0) / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}   # key → (tokens, last refill)

    def check(self, key: str, now: float | None = None) -> None:
        if not self.rpm:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.rpm), now))
        tokens = min(float(self.rpm), tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self._rate)
            raise TooManyRequests(
                f"rate limit of {self.rpm} requests per minute reached; retry in {wait}s",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # forget idle callers (only reachable without keys)
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
