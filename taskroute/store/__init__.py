"""Where routed requests are logged and read back: the `Store` and `LogReader` Protocols and
their implementations. The only package that opens a database."""

from taskroute.store.base import LogEntry, LogReader, RatedAnswer, RequestRoute, Store
from taskroute.store.logfile import give_feedback
from taskroute.store.sqlite import SqliteStore

__all__ = ["LogEntry", "LogReader", "RatedAnswer", "RequestRoute", "SqliteStore", "Store",
           "give_feedback"]
