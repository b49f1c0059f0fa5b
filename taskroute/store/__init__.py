"""Where routed requests are logged: the `Store` Protocol and its implementations."""

from taskroute.store.base import LogEntry, Store
from taskroute.store.sqlite import SqliteStore

__all__ = ["LogEntry", "SqliteStore", "Store"]
