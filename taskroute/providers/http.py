"""What both adapters share: one pooled aiohttp session per provider, its key, its deadlines.

The session is created lazily inside the running loop (never at import or construction), with a
keep-alive connection pool. A key is read from the environment variable the policy names and
held as a `Secret`, as are header values the policy reads from the environment
(`headers: {api-key: {env: AZURE_KEY}}`); a missing one fails the first call with a
`ConfigError` naming the variable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import msgspec
import yarl

from taskroute.exceptions import ConfigError, MalformedResponse, Secret
from taskroute.policy.model import ProviderSpec
from taskroute.providers.errors import Clock, status_error
from taskroute.tracing.propagation import OUTGOING

_encode = msgspec.json.encode
DRAIN_S = 2.0   # how long a finished stream's last bytes may take before its connection is shut
# What an error status means, from the response (status, headers) and its body: each adapter's.
StatusError = Callable[[aiohttp.ClientResponse, bytes], Exception]


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
        # A query in the base URL (`...?api-version=...`) stays after the path each call adds.
        base, _, self._query = spec.base_url.partition("?")
        self.base_url = base.rstrip("/")
        # The environment is read here, not as a default argument, so no signature shows it.
        env = os.environ if env is None else env
        self._key = read_key(spec, env)
        self._header_secrets = {name: Secret(env[var].strip()) for name, var in
                                spec.header_env.items() if env.get(var, "").strip()}
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # finished streams whose last bytes are still coming (see `end_stream`)
        self._draining: dict[asyncio.Task[None], aiohttp.ClientResponse] = {}

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

    def headers(self) -> dict[str, str]:
        """The policy's headers, those from the environment included (`ConfigError` naming
        the variable when one is unset)."""
        missing = [var for name, var in self.spec.header_env.items()
                   if name not in self._header_secrets]
        if missing and not self.spec.simulated:
            raise ConfigError(f"provider {self.spec.name!r} needs a header value: set the "
                              f"environment variable {missing[0]}")
        return {**self.spec.headers,
                **{name: secret.reveal() for name, secret in self._header_secrets.items()}}

    def redact(self, text: str) -> str:
        """`text` with the key and secret headers (should an upstream echo them) as '***'."""
        for secret in (self._key, *self._header_secrets.values()):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
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
        self._draining.clear()   # that loop's: its connector's close below shuts their sockets
        if old is not None and not old.closed and old.connector is not None:
            old.connector._close()  # synchronous: closes its sockets, marks the session closed

    async def aclose(self) -> None:
        """Close the pool, and first any finished stream still draining (a CLI's loop ends
        right after: no drain may outlive it holding a connection)."""
        loop = asyncio.get_running_loop()
        drains = [(task, response) for task, response in self._draining.items()
                  if task.get_loop() is loop]
        self._draining = {}
        for task, response in drains:
            task.cancel()
            response.close()   # here, not in the task: one cancelled before it ran runs nothing
        await asyncio.gather(*(task for task, _ in drains), return_exceptions=True)
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def post(
        self, path: str, body: dict[str, Any] | bytes, headers: Mapping[str, str], clock: Clock,
    ) -> aiohttp.ClientResponse:
        """Send `body` as JSON (bytes: already encoded, as a signed request must be); returns
        once the response headers arrive (first-token phase)."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=clock.timeouts.connect, sock_connect=clock.timeouts.connect
        )
        session = self.session()
        trace = OUTGOING.get()  # the call's W3C trace headers, when it is traced
        if trace is not None:
            headers = {**headers, **trace}
        async with asyncio.timeout_at(clock.deadline()):
            # As written: a signed request's path must reach the server byte for byte (yarl
            # would otherwise decode Bedrock's `%3A` in a model id).
            return await session.post(
                yarl.URL(self.url(path), encoded=True),
                data=body if isinstance(body, bytes) else _encode(body),
                headers=headers, timeout=timeout,
            )

    def url(self, path: str) -> str:
        """The base URL with `path` added, before any query the base URL carries."""
        if not self._query:
            return self.base_url + path
        return self.base_url + path + ("&" if "?" in path else "?") + self._query

    async def read(self, response: aiohttp.ClientResponse, clock: Clock) -> bytes:
        """The whole body, within the total deadline."""
        clock.started()
        async with asyncio.timeout_at(clock.deadline()):
            return await response.read()

    def status_error(self, model: str, message_of: Callable[[Any], str | None]) -> StatusError:
        """The usual `StatusError`: `errors.status_error` with the upstream's message as
        `message_of` finds it in the body, under this provider's name, secrets redacted."""
        def error(response: aiohttp.ClientResponse, raw: bytes) -> Exception:
            return status_error(response.status, response.headers, raw, provider=self.spec.name,
                                model=model, message_of=message_of, redact=self.redact)
        return error

    async def exchange(
        self, path: str, body: dict[str, Any] | bytes, headers: Mapping[str, str], clock: Clock,
        status_error: StatusError,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """One non-streamed call: `post`, the whole body read (the connection back to the
        pool), `status_error(response, body)` raised for a status outside 2xx."""
        response = await self.post(path, body, headers, clock)
        try:
            raw = await self.read(response, clock)
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise status_error(response, raw)
        return response, raw

    async def open_stream(
        self, path: str, body: dict[str, Any] | bytes, headers: Mapping[str, str], clock: Clock,
        status_error: StatusError, content_type: str = "text/event-stream",
    ) -> aiohttp.ClientResponse:
        """A streamed call's response once its headers show a 2xx of `content_type`; an error
        status raises `status_error(response, body)`. The caller closes it when done."""
        response = await self.post(path, body, headers, clock)
        try:
            if not 200 <= response.status < 300:
                raise status_error(response, await self.read(response, clock))
            if response.content_type != content_type:
                article = "an" if content_type[:1] in "aeiou" else "a"
                raise MalformedResponse(f"expected {article} {content_type} answer, got "
                                        f"{response.content_type or 'no type'}")
        except BaseException:
            response.close()
            raise
        return response

    def end_stream(self, response: aiohttp.ClientResponse, *, complete: bool) -> None:
        """End a streamed response. One read to its end (`[DONE]`, `message_stop`) goes back to
        the pool for the next call — a new connection costs a TCP handshake on the request's
        path — once its last bytes (the chunked terminator) are in, drained in the background
        if need be; one abandoned midway is closed, which hangs up, so the upstream stops too."""
        if not complete:
            response.close()
        elif response.content.at_eof():
            response.release()
        else:
            task = asyncio.get_running_loop().create_task(self._drain(response))
            self._draining[task] = response
            task.add_done_callback(self._forget_drain)

    def _forget_drain(self, task: asyncio.Task[None]) -> None:
        self._draining.pop(task, None)

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        """Read what is left of a finished stream, then release it; closed if that fails, takes
        longer than `DRAIN_S`, or is cancelled (`aclose`)."""
        drained = False
        try:
            async with asyncio.timeout(DRAIN_S):
                while await response.content.readany():
                    pass
            drained = True
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        finally:
            if drained:
                response.release()
            else:
                response.close()
