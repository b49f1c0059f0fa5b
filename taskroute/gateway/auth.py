"""Who may do what: keys with scopes, per-key rate limits, and a brake on wrong-key guesses.

A key is never compared as given: its HMAC under the server's secret (fixed length) is compared
in constant time with every configured key's, with no early exit, so the time tells neither
whether nor which key matched. The log names a request's key by a fingerprint cut from that same
keyed digest (`key-` + 12 hex), which no one without the secret can check a guess against.
Health endpoints and the dashboard's sign-in stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from taskroute.exceptions import (
    AuthenticationFailed,
    Forbidden,
    Secret,
    TooManyRequests,
    WrongKey,
)
from taskroute.gateway.keys import ApiKey, Scope

Need = Literal["open", "any", "user", "read", "admin"]
# What each endpoint needs; a path not listed needs a key of any scope (then 404s).
# tests/gateway/test_scopes.py fails when an endpoint is missing here.
ROUTE_NEEDS: dict[str, Need] = {
    "/healthz": "open", "/readyz": "open",
    "/dashboard/signin": "open", "/dashboard/signout": "open",
    "/v1/models": "any", "/openapi.json": "any",
    "/v1/chat/completions": "user", "/v1/messages": "user", "/v1/taskroute/feedback": "user",
    "/v1/responses": "user", "/v1/messages/count_tokens": "user", "/v1/embeddings": "user",
    "/v1/taskroute/stats": "read", "/v1/taskroute/timeseries": "read",
    "/v1/taskroute/ab": "read", "/v1/taskroute/shadow": "read",
    "/v1/taskroute/breakers": "read", "/dashboard": "read", "/metrics": "read",
    "/v1/taskroute/reload": "admin",
}
OPEN_PATHS = frozenset(p for p, need in ROUTE_NEEDS.items() if need == "open")
_GRANTS: dict[Scope, frozenset[str]] = {
    "admin": frozenset({"any", "user", "read", "admin"}),
    "read": frozenset({"any", "read"}),
    "user": frozenset({"any", "user"}),
}


@dataclass(frozen=True, slots=True)
class Identity:
    """The configured key a request came with (never the key itself)."""

    key_id: str                   # the fingerprint the log records
    scope: Scope
    name: str | None = None
    rate_limit_rpm: int | None = None

    def may(self, need: Need) -> bool:
        return need == "open" or need in _GRANTS[self.scope]


IDENTITY: web.RequestKey[Identity] = web.RequestKey("taskroute_identity", Identity)


def need_of(path: str) -> Need:
    return ROUTE_NEEDS.get(path, "any")


def given_key(authorization: str | None, x_api_key: str | None,
              admin_header: str | None = None) -> str | None:
    """The key a request presents: the admin header (reload's, kept working), else
    `Authorization: Bearer KEY` (OpenAI clients), else `x-api-key` (Anthropic's)."""
    if admin_header:
        return admin_header.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


class Authenticator:
    def __init__(self, keys: Sequence[ApiKey], salt: Secret | None = None,
                 brake: GuessBrake | None = None) -> None:
        self.brake = brake or GuessBrake(10, 60.0)
        # No salt given (a library caller): a per-process one; fingerprints change on restart.
        self._salt = (salt.reveal() if salt else secrets.token_hex(32)).encode()
        self._keys = [(self._digest(k.secret.reveal()),
                       Identity(self.fingerprint(k.secret.reveal()), k.scope, k.name,
                                k.rate_limit_rpm)) for k in keys]
        self._by_id = {ident.key_id: ident for _, ident in self._keys}

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def _digest(self, key: str) -> bytes:
        # surrogateescape: a header's non-UTF-8 bytes are a wrong key, not a crash
        return hmac.new(self._salt, key.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()

    def fingerprint(self, key: str) -> str:
        """A short, stable id for a key, safe to log (keyed: it cannot be checked offline)."""
        return "key-" + self._digest(key).hex()[:12]

    def identify(self, given: str | None, address: str | None = None) -> Identity:
        """The configured key `given` is. Raises `AuthenticationFailed`, or `TooManyRequests`
        while `address` is braked for wrong keys (checked first: the answer tells nothing)."""
        address = address or "unknown"
        self.brake.check(address)
        if not given:
            raise AuthenticationFailed(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key'")
        candidate = self._digest(given)
        found: Identity | None = None
        for digest, ident in self._keys:  # all of them, always: the time tells nothing
            if hmac.compare_digest(candidate, digest):
                found = ident
        if found is None:
            self.brake.failed(address)
            raise WrongKey("invalid API key")
        return found

    def by_id(self, key_id: str) -> Identity | None:
        """A configured key by its fingerprint (a session names its key that way)."""
        return self._by_id.get(key_id)

    def signing_key(self, purpose: bytes) -> bytes:
        """A secret derived from the server's, for one purpose (e.g. signing sessions)."""
        return hmac.new(self._salt, b"taskroute:" + purpose, hashlib.sha256).digest()


def check_scope(ident: Identity, need: Need) -> None:
    if not ident.may(need):
        raise Forbidden(f"this key's scope ({ident.scope}) does not allow this endpoint; "
                        f"it needs a {need} key" + (" or an admin key" if need != "admin" else ""))


class RateLimiter:
    """A token bucket per key: `rpm` requests a minute (the key's own, else the gateway's),
    bursts up to `rpm`."""

    def __init__(self, rpm: int | None) -> None:
        self.rpm = rpm
        self._buckets: dict[str, tuple[float, float]] = {}   # key → (tokens, last refill)

    def check(self, key: str, rpm: int | None = None, now: float | None = None) -> None:
        rpm = rpm or self.rpm
        if not rpm:
            return
        rate = rpm / 60.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(rpm), now))
        tokens = min(float(rpm), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / rate)
            raise TooManyRequests(
                f"rate limit of {rpm} requests per minute reached; retry in {wait}s",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # forget idle callers (only reachable without keys)
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}


class GuessBrake:
    """Wrong keys per client address: after `limit` in `window_s`, every request from that
    address (right key or not, so the answer tells a guesser nothing) is a 429 until the
    window that began with its first wrong key has passed."""

    MAX_ADDRESSES = 100_000

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._seen: dict[str, tuple[int, float]] = {}   # address → (wrong keys, window start)

    def check(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        count, start = self._seen.get(address, (0, now))
        if count >= self.limit and now - start < self.window_s:
            wait = math.ceil(start + self.window_s - now)
            raise TooManyRequests(
                f"too many wrong API keys from this address; retry in {wait}s",
                retry_after=wait)

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        count, start = self._seen.get(address, (0, now))
        if now - start >= self.window_s:
            count, start = 0, now
        self._seen[address] = (count + 1, start)
        if len(self._seen) > self.MAX_ADDRESSES:  # many addresses: forget the windows passed
            self._seen = {a: v for a, v in self._seen.items() if now - v[1] < self.window_s}
            if len(self._seen) > self.MAX_ADDRESSES:
                self._seen.clear()
