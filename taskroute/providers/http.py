"""What both adapters share: one pooled aiohttp session per provider, its key, its deadlines.

The session is created lazily inside the running loop (never at import or construction), with a
keep-alive connection pool. A key is read from the environment variable the policy names and
held as a `Secret`; a missing key fails the first call with a `ConfigError` naming the variable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec

from taskroute.exceptions import ConfigError, Secret
from taskroute.policy.model import ProviderSpec
from taskroute.providers.errors import Clock

_encode = msgspec.json.encode


def read_key(spec: ProviderSpec, env: Mapping[str, str]) -> Secret | None:
    """The provider's key, or None when it needs none (no variable named, or simulated)."""
    if not spec.api_key_env:
        return None
    value = env.get(spec.api_key_env, "").strip()
    return Secret(value) if value else None


class HttpClient:
    """One provider's HTTP client: lazy pooled session, fixed headers, deadline-bounded posts."""

    def __init__(
        self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None, pool_size: int = 256,
    ) -> None:
        self.spec = spec
        self.base_url = spec.base_url.rstrip("/")
        # The environment is read here, not as a default argument, so no signature shows it.
        self._key = read_key(spec, os.environ if env is None else env)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"HttpClient(name={self.spec.name!r}, base_url={self.base_url!r})"

    def key(self) -> Secret | None:
        """The key, or None when none is needed; `ConfigError` when one is needed but unset."""
        if self._key is None and self.spec.api_key_env and not self.spec.simulated:
            raise ConfigError(
                f"provider {self.spec.name!r} needs an API key: "
                f"set the environment variable {self.spec.api_key_env}"
            )
        return self._key

    def redact(self, text: str) -> str:
        """`text` with the key (should an upstream echo it) replaced by '***'."""
        if self._key is not None and self._key.reveal():
            return text.replace(self._key.reveal(), "***")
        return text

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._forget_session()
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=60, ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                read_bufsize=2**20,      # SSE lines carrying large tool arguments
                raise_for_status=False,
                auto_decompress=True,
            )
            self._loop = loop
        return self._session

    def _forget_session(self) -> None:
        """Drop a session made on an earlier (now finished) event loop without awaiting it."""
        old, self._session = self._session, None
        if old is not None and not old.closed and old.connector is not None:
            old.connector._close()  # synchronous: closes its sockets, marks the session closed

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def post(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str], clock: Clock,
    ) -> aiohttp.ClientResponse:
        """Send `body` as JSON; returns once the response headers arrive (first-token phase)."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=clock.timeouts.connect, sock_connect=clock.timeouts.connect
        )
        session = self.session()
        async with asyncio.timeout_at(clock.deadline()):
            return await session.post(
                self.base_url + path, data=_encode(body), headers=headers, timeout=timeout,
            )

    async def read(self, response: aiohttp.ClientResponse, clock: Clock) -> bytes:
        """The whole body, within the total deadline."""
        clock.started()
        async with asyncio.timeout_at(clock.deadline()):
            return await response.read()
