"""The router the gateway serves now, swapped in one step by a reload.

Each request leases the router that is current when it starts and holds it to its end (a stream
to its last byte), so a reload never changes the router under a request in flight. A router that
has been swapped out is closed once its last lease is returned — not after a fixed delay, and
never while something still streams from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from taskroute.experiment import Serving

log = logging.getLogger("taskroute.gateway")


class Current:
    def __init__(self, router: Serving) -> None:
        self._router = router
        self._leases: dict[int, int] = {id(router): 0}
        self._retired: dict[int, Serving] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def router(self) -> Serving:
        """The router a request starting now is served by."""
        return self._router

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Serving]:
        """The current router, held until the block ends."""
        router = self._router
        key = id(router)
        self._leases[key] = self._leases.get(key, 0) + 1
        try:
            yield router
        finally:
            self._leases[key] -= 1
            if not self._leases[key] and key in self._retired:
                self._close_soon(key)

    def in_flight(self, router: Serving) -> int:
        return self._leases.get(id(router), 0)

    def swap(self, new: Serving) -> Serving:
        """Serve `new` from now on; the old router is closed after its last request."""
        old, self._router = self._router, new
        self._leases.setdefault(id(new), 0)
        self._retired[id(old)] = old
        if not self._leases.get(id(old)):
            self._close_soon(id(old))
        return old

    def _close_soon(self, key: int) -> None:
        router = self._retired.pop(key)
        self._leases.pop(key, None)
        task = asyncio.get_running_loop().create_task(_close(router))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the current router and wait for retired ones still closing."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        for key in list(self._retired):  # shutting down: in-flight requests have drained
            await _close(self._retired.pop(key))
        await self._router.aclose()


async def _close(router: Serving) -> None:
    try:
        await router.aclose()
    except Exception:  # a router going away must not take the gateway with it
        log.exception("closing a replaced router failed")
