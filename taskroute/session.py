"""The session's fallback history: how often a session's requests escalated recently.

Behind a small Protocol, so a shared store (the gateway's database, Redis) can replace the
in-memory one without touching the router. A backend is a factory `(url) -> SessionHistory`
registered in `taskroute.plugins.SESSIONS` (entry-point group `taskroute.sessions`), chosen by
a `NAME` or `NAME:LOCATION` URL (`taskroute serve --sessions`); `memory` is built in.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

from taskroute.plugins import SESSIONS, open_url

SessionFactory = Callable[[str], "SessionHistory"]


class SessionHistory(Protocol):
    def escalations(self, session_id: str, window_s: float) -> int:
        """Escalations recorded for the session within the last `window_s` seconds."""
        ...

    def record_escalation(self, session_id: str) -> None: ...


class InMemorySessionHistory:
    """Per-process history, bounded in sessions and events so it cannot grow without limit."""

    def __init__(
        self, *, max_sessions: int = 100_000, max_events: int = 64,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_events = max_events
        self._now = now

    def escalations(self, session_id: str, window_s: float) -> int:
        events = self._events.get(session_id)
        if not events:
            return 0
        cutoff = self._now() - window_s
        return sum(1 for at in events if at >= cutoff)

    def record_escalation(self, session_id: str) -> None:
        events = self._events.get(session_id)
        if events is None:
            events = self._events[session_id] = deque(maxlen=self._max_events)
            if len(self._events) > self._max_sessions:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(session_id)
        events.append(self._now())


def build_memory(url: str) -> InMemorySessionHistory:
    """The `memory` backend: per process, forgotten on restart; takes no location."""
    if url.strip() != "memory":
        raise ValueError("the memory session history takes no location: write just 'memory'")
    return InMemorySessionHistory()


def open_history(url: str) -> SessionHistory:
    """The session history `url` names (`ConfigError` when unknown, unusable or broken)."""
    history: SessionHistory = open_url(SESSIONS, url, "memory")
    return history
