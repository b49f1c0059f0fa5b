"""The request log from code with no event loop: a script giving feedback, the training-data
importer reading one. Blocking, closed before returning. A path is a SQLite file, read with one
connection; a URL (`postgresql://…`, a plugin's `NAME://…`) is opened through the store
registry and read through its `LogReader`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from taskroute.exceptions import ConfigError
from taskroute.quality.feedback import Feedback, make_feedback
from taskroute.store.base import LogReader, RatedAnswer
from taskroute.store.migrations import migrate
from taskroute.store.sqlite import connect
from taskroute.store.sqlite_rows import rated_answers, record_feedback

_MAGIC = b"SQLite format 3\x00"


def is_log(path: Path) -> bool:
    """Whether `path` is a SQLite file (rather than, say, the log exported as JSON Lines)."""
    try:
        with path.open("rb") as file:
            return file.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


T = TypeVar("T")


def is_url(location: str | Path) -> bool:
    """Whether `location` names a store by URL (`postgresql://…`) rather than a SQLite file."""
    return isinstance(location, str) and "://" in location


def on_store(url: str, read: Callable[[LogReader], Awaitable[T]]) -> T:
    """`read` run on the store `url` names, opened through the registry and closed after."""
    from taskroute.store.registry import open_store

    store = open_store(url)
    if not isinstance(store, LogReader):
        asyncio.run(store.aclose())
        raise ConfigError(f"the store {url!r} cannot be read back (it is no LogReader)")

    async def run() -> T:
        try:
            return await read(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def give_feedback(
    db: str | Path, request_id: str, *, score: float | None = None, thumbs: str | None = None,
    corrected: bool = False, text: str | None = None, task: str | None = None,
) -> Feedback:
    """The library's way to give feedback on a request in the log at `db`, a SQLite file or a
    store URL such as `postgresql://…` (async code with a store at hand awaits
    `store.add_feedback(make_feedback(...))` instead). `task` names the class the request
    really was; with no policy at hand only its form is checked (the gateway checks it against
    the policy's classes). Raises `UnknownRequest`, `DuplicateFeedback` or `InvalidRequest`."""
    feedback = make_feedback(request_id, score=score, thumbs=thumbs, corrected=corrected,
                             text=text, task=task)
    if is_url(db):
        on_store(str(db), lambda log: log.add_feedback(feedback))
        return feedback
    conn = connect(db)
    try:
        migrate(conn)
        record_feedback(conn, feedback)
    finally:
        conn.close()
    return feedback


def read_rated_answers(path: str | Path) -> list[RatedAnswer]:
    """`LogReader.rated_answers` of the log at `path` (a SQLite file, opened read-only) or at a
    store URL."""
    if is_url(path):
        return on_store(str(path), lambda log: log.rated_answers())
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return rated_answers(conn)
    finally:
        conn.close()
