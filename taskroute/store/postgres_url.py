"""`--db postgresql://…`: the PostgreSQL store's factory, registered in `taskroute.plugins.STORES`
under `postgresql` and `postgres`, and what it derives from the URL. Imports no driver, so a
missing `taskroute[postgres]` extra is one clear line, not an ImportError."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from taskroute.store.urls import redact

if TYPE_CHECKING:
    from taskroute.store.postgres import PostgresStore

ENV_SPOOL = "TASKROUTE_SPOOL_DIR"
__all__ = ["build", "default_spool", "redact"]


def default_spool(url: str) -> Path:
    """$TASKROUTE_SPOOL_DIR, else one folder per server and database under the user's state
    folder, so two logs never replay into each other."""
    if os.environ.get(ENV_SPOOL):
        return Path(os.environ[ENV_SPOOL])
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    server = re.sub(r"(://)?[^/@]*@", "", url.partition("?")[0].partition("://")[2])
    return Path(state) / "taskroute" / "pg-spool" / re.sub(r"[^A-Za-z0-9_.-]+", "_", server)


def build(url: str) -> PostgresStore:
    """`postgresql://user:password@host:port/database` (or `postgres://`), as libpq takes it."""
    if not url.partition("://")[2]:
        raise ValueError("the postgresql store needs a server: postgresql://USER@HOST:PORT/DB")
    if importlib.util.find_spec("asyncpg") is None:
        raise ValueError("the PostgreSQL log needs its driver: pip install 'taskroute[postgres]'")
    from taskroute.store.postgres import PostgresStore

    return PostgresStore(url, spool_dir=default_spool(url))
