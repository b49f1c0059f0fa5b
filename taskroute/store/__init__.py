"""Where routed requests are logged and read back: the `Store` and `LogReader` Protocols
(`base.py`) and SQLite behind both (`sqlite.py`). The only package that opens a database; a
second backend is one more module here."""

from taskroute.store.base import LogEntry, LogReader, RatedAnswer, RequestRoute, Store
from taskroute.store.logfile import give_feedback
from taskroute.store.sqlite import SqliteStore

__all__ = ["LogEntry", "LogReader", "RatedAnswer", "RequestRoute", "SqliteStore", "Store",
           "give_feedback"]
