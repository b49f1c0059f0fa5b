"""The acknowledgement journal: each logged request's rows, one line each, appended to a file
beside the log before SQLite has them, so a request is durable (survives this process being
killed) as soon as `SqliteStore.add` returns, and the commit leaves the gateway's critical path.

A line is the request's rows (`request_row`, `attempt_rows`) as JSON (msgspec, which escapes
every newline inside strings), ended by `\\n`, written with one `os.write` to a file opened
`O_APPEND`. That write is the durability point, like a WAL append: a few KB into the page cache,
~10 µs, with no fsync (so, like SQLite's `synchronous=NORMAL` commits, it survives SIGKILL, a
crash or the OOM killer, not the machine losing power). It runs on the event loop: handing it to
a thread would cost more than it does, and the loop would then have to wait for that thread.

The files are `log.db-ack.<pid>.<n>`, one active at a time. When the writer thread takes a batch
it *seals* the active file (under the lock the appends take, so every entry in it is in the
batch, and every entry appended later goes to a fresh file) and deletes it once that batch has
committed; a commit that fails keeps its file for the next open to replay. (Sealing rather than
truncating one file: appends go on during a commit, and a file cannot drop its first part.)

Each file is `flock`ed by the store writing it until deleted. Opening a store replays the files
nobody holds — those of a process that died — with INSERT OR REPLACE, so rows already committed
are harmless; a torn line (the process died mid-write) is skipped with a warning.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

log = logging.getLogger(__name__)
T = TypeVar("T")
Rows = tuple[list[Any], list[list[Any]]]  # a request's row and its attempts' rows, as decoded
_decode = msgspec.json.Decoder(Rows).decode
_encode = msgspec.json.Encoder().encode

if sys.platform == "win32":  # no flock: a second store opened on a live log may replay its journal
    def _hold(fd: int, *, wait: bool) -> bool:
        return True
else:
    import fcntl

    def _hold(fd: int, *, wait: bool) -> bool:
        """Lock the file for this process (False: another holds it and `wait` is False)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Sealed:
    """A journal file no longer appended to, every entry in it taken by one batch."""

    path: Path
    fd: int


class Journal:
    def __init__(self, db: Path) -> None:
        self._dir, self._prefix = db.parent, f"{db.name}-ack.{os.getpid()}."
        self._seq = 0
        self._lock = threading.Lock()
        self._path, self._fd = self._create()
        self._lines = 0  # appended to the active file (changed only under `_lock`)
        self._failing = False  # the last append failed (logged once until one succeeds)

    def append(self, rows: object, then: Callable[[], None]) -> None:
        """Write `rows` as one line, then call `then` (queueing them for the writer) under the
        same lock, so a batch taken while sealing holds every line of the file it seals."""
        line = _encode(rows) + b"\n"
        with self._lock:
            try:
                while line:  # a short write (a full disk) is finished, or fails, here
                    line = line[os.write(self._fd, line):]
            except OSError as exc:  # the log failing does not stop answers: queued all the same
                if not self._failing:
                    log.error("cannot journal the request log (%s): requests are "
                              "acknowledged before their rows are durable", exc)
                self._failing = True
            else:
                self._failing = False
            self._lines += 1
            then()

    def seal(self, take: Callable[[], T]) -> tuple[T, Sealed | None]:
        """On the writer thread: call `take` (draining the queue) under the append lock and seal
        the active file if anything was appended to it (None otherwise)."""
        fresh = self._create() if self._lines else None  # opened before the loop is held up
        with self._lock:
            taken = take()
            if not self._lines:
                return taken, None
            if fresh is None:  # appended to between the look and the lock: rare
                fresh = self._create()
            sealed = Sealed(self._path, self._fd)
            (self._path, self._fd), self._lines = fresh, 0
        return taken, sealed

    def committed(self, sealed: Sealed) -> None:
        """Everything in `sealed` is in SQLite: delete it (then let go of its lock)."""
        sealed.path.unlink(missing_ok=True)
        os.close(sealed.fd)

    def keep(self, sealed: Sealed) -> None:
        """Its batch failed to commit: leave the file for the next open to replay."""
        os.close(sealed.fd)

    def close(self) -> None:
        """The writer has stopped, every line appended taken (sealed) by a batch: the active
        file is empty and goes (it is left if not, for the next open to replay)."""
        if not self._lines:
            self._path.unlink(missing_ok=True)
        os.close(self._fd)

    def _create(self) -> tuple[Path, int]:
        while True:
            path = self._dir / f"{self._prefix}{self._seq}"
            self._seq += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # a dead process with this pid left one (not replayed)
                continue
            _hold(fd, wait=True)
            return path, fd


@contextmanager
def leftovers(db: Path) -> Iterator[list[Rows]]:
    """The rows of every journal beside `db` that no live store holds (each line decoded; torn
    or unreadable lines skipped with a warning), held while the caller commits them; the files
    are deleted when the block ends without an error."""
    held: list[tuple[Path, int]] = []
    rows: list[Rows] = []
    try:
        for path in sorted(db.parent.glob(f"{db.name}-ack.*")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # its store committed it meanwhile
                continue
            if not _hold(fd, wait=False):  # a live store's: it will commit it
                os.close(fd)
                continue
            held.append((path, fd))
            rows.extend(_lines(path, fd))
        yield rows
        for path, _ in held:
            path.unlink(missing_ok=True)
    finally:
        for _, fd in held:
            os.close(fd)


def _lines(path: Path, fd: int) -> Iterator[Rows]:
    with os.fdopen(os.dup(fd), "rb") as file:
        data = file.read()
    lines = data.split(b"\n")
    if lines[-1]:
        log.warning("%s: skipping a torn last line (%d bytes)", path, len(lines[-1]))
    for number, line in enumerate(lines[:-1], 1):
        try:
            yield _decode(line)
        except msgspec.DecodeError as exc:
            log.warning("%s:%d: skipping an unreadable line (%s)", path, number, exc)
