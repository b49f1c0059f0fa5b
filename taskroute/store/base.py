"""The `Store` Protocol: every routed request is logged through it, from the gateway and the
library alike. A backend is one module with a factory `(url) -> Store` named in
`taskroute.plugins.STORES` (entry-point group `taskroute.stores`); `store/registry.py` opens one
from a URL such as `sqlite:log.db`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from taskroute.decision import Decision
from taskroute.records import Api, RouteRecord


@dataclass(frozen=True, slots=True)
class LogEntry:
    record: RouteRecord
    api: Api = "library"
    http_status: int = 200
    user: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None     # a short fingerprint of the gateway key, never the key
    prompt: str | None = None         # only when the policy's `log content` is true
    answer: str | None = None
    variant: str | None = None        # the A/B variant that served it, when variants exist


class Store(Protocol):
    def add(self, entry: LogEntry) -> None:
        """Queue one entry; never blocks the event loop (writes are batched off it)."""
        ...

    def add_shadow(self, request_id: str, decision: Decision) -> None:
        """Queue what the shadow policy would have chosen for a logged request."""
        ...

    async def flush(self) -> None:
        """Return once every entry added so far is durably written."""
        ...

    async def aclose(self) -> None: ...
