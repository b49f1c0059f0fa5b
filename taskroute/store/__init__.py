"""Where routed requests are logged: the `Store` Protocol and its implementations."""

from taskroute.store.base import LogEntry, Store

__all__ = ["LogEntry", "Store"]
