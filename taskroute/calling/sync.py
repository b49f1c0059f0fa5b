"""A private event loop on a daemon thread, for callers without one (`Router.complete_sync`).

One loop for the Router's whole life, so synchronous calls share its pooled connections,
circuit breakers and first-token statistics, as asynchronous calls do; `stop()` closes what was
registered with `on_stop` on that loop, then ends the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._thread = threading.Thread(target=self.loop.run_forever, name="taskroute-sync",
                                        daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the thread's loop and wait for its result (or its exception)."""
        return self.submit(coro).result()

    def on_stop(self, closer: Callable[[], Awaitable[None]]) -> None:
        if closer not in self._closers:
            self._closers.append(closer)

    def owns_current_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def stop(self) -> None:
        """Run the closers on the loop, then stop it and join the thread. Idempotent."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            closers, self._closers = self._closers, []

            async def close_all() -> None:
                for close in closers:
                    await close()

            try:
                self.run(close_all())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=5)
        self.loop.close()
