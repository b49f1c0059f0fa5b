"""News every replica hears at once, on one Redis pub/sub channel: a deployment's breaker
opened (`breaker DEPLOYMENT SECONDS`), a reload was asked for (`reload ORIGIN`). One listener
per process, reconnecting when Redis restarts; on each (re)connect it reads the breakers
already open, so a replica that starts (or missed messages) late still knows them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from taskroute.shared.base import OnReload
from taskroute.shared.redis_conn import down_errors

log = logging.getLogger("taskroute.shared")
CHANNEL = "taskroute:events"
BREAKER_PREFIX = "taskroute:breaker:"
OWN_ECHO_S = 5.0  # this replica's announcement, heard back from the channel (no origin in it)


class RedisBreakers:
    """`BreakerBoard`: open breakers announced by any replica, mirrored here so that asking
    costs no round trip."""

    def __init__(self, spawn: Callable[[Any], None], client: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._spawn, self._client, self._clock = spawn, client, clock
        self._until: dict[str, float] = {}
        self._own: dict[str, float] = {}  # deployments this replica announced, and when
        self._listeners: list[Callable[[str, float], None]] = []

    def opened(self, deployment: str, cooldown_s: float) -> None:
        self.mirror(deployment, cooldown_s)
        self._own[deployment] = self._clock()
        self._spawn(self._announce(deployment, cooldown_s))

    def on_heard(self, callback: Callable[[str, float], None]) -> None:
        self._listeners.append(callback)

    def heard(self, deployment: str, seconds: float) -> None:
        """News from the channel (or found open on connecting): mirrored, and told to the
        listeners unless it is this replica's own announcement coming back."""
        self.mirror(deployment, seconds)
        announced = self._own.get(deployment)
        if announced is not None and self._clock() - announced < OWN_ECHO_S:
            return
        for callback in self._listeners:
            callback(deployment, seconds)

    async def _announce(self, deployment: str, cooldown_s: float) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(BREAKER_PREFIX + deployment, "1", px=max(1, int(cooldown_s * 1000)))
            pipe.publish(CHANNEL, f"breaker {deployment} {cooldown_s}")
            await pipe.execute()

    def open_for(self, deployment: str) -> float:
        until = self._until.get(deployment)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[deployment]
            return 0.0
        return left

    def mirror(self, deployment: str, seconds: float) -> None:
        self._until[deployment] = max(self._until.get(deployment, 0.0), self._clock() + seconds)

    async def load(self, client: Any) -> None:
        async for key in client.scan_iter(match=BREAKER_PREFIX + "*", count=100):
            ttl_ms = await client.pttl(key)
            if ttl_ms > 0:
                deployment = key[len(BREAKER_PREFIX):]
                if self.open_for(deployment) <= 0:  # news to this replica
                    self.heard(deployment, ttl_ms / 1000)


class RedisEvents:
    """The listener, and `Broadcast` for reloads."""

    def __init__(self, url_client: Callable[[], Any], client: Any, breakers: RedisBreakers,
                 origin: str) -> None:
        self._listener_client = url_client
        self._client = client
        self._breakers = breakers
        self._origin = origin
        self._callbacks: list[OnReload] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def on_reload(self, callback: OnReload) -> None:
        self._callbacks.append(callback)

    async def publish_reload(self) -> None:
        await self._client.publish(CHANNEL, f"reload {self._origin}")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        down = down_errors()
        pause = 0.1
        while True:
            client = self._listener_client()
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self._breakers.load(client)
                    self.connected.set()
                    pause = 0.1
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                           timeout=1.0)
                        if message is not None:
                            await self._handle(str(message["data"]))
            except down as exc:
                if self.connected.is_set():
                    log.warning("shared state: lost the Redis event channel (%s); "
                                "reconnecting", exc)
                self.connected.clear()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
            finally:
                await client.aclose()

    async def _handle(self, data: str) -> None:
        kind, _, rest = data.partition(" ")
        if kind == "breaker":
            deployment, _, seconds = rest.rpartition(" ")
            with contextlib.suppress(ValueError):
                self._breakers.heard(deployment, float(seconds))
        elif kind == "reload" and rest != self._origin:
            for callback in self._callbacks:
                try:
                    await callback()
                except Exception:  # one replica's reload failing must not stop the listener
                    log.exception("shared state: a broadcast reload failed")
