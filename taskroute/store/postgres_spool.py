"""The PostgreSQL log's local spool: acknowledged rows that could not be committed in time (the
server down, slow, or the memory bound reached) are appended here, and written to Postgres when
it is back — by this process, or by the next store opened on the same spool folder if this one
died first.

A line is one item — ("e", request row, attempt rows), ("r", refusal row, []), ("s", shadow row,
[]), ("p", stored response row, []) or ("t", breaker trip row, []) — as JSON (msgspec escapes
every newline inside strings), written with `os.write` to a file opened `O_APPEND`: as durable
as SQLite's journal (`sqlite_journal`), surviving the process being killed but not the machine
losing power. Files are `<pid>.<n>.spool`, rotated every `FILE_ITEMS` items so a replay goes a
file at a time between live commits; each is `flock`ed by the store writing it, so a second
store replays only the files of a process that is gone. Replaying inserts with ON CONFLICT DO
NOTHING, so a row already committed (a commit whose reply was lost) is not written twice (a
trip's row keeps its closing time).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)
Item = tuple[str, list[Any], list[list[Any]]]  # kind ("e", "r", "s", "p", "t"), row, attempts
FILE_ITEMS = 2_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Item).decode


@dataclass(frozen=True, slots=True)
class SpoolFile:
    """A spool file no longer appended to, held (flocked) by this process while it replays."""

    path: Path
    fd: int
    items: list[Item]


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq = 0
        self._lock = threading.Lock()
        self._active: tuple[Path, int] | None = None
        self._lines = 0
        self._mine: list[tuple[Path, int]] = []  # sealed files of this process, oldest first
        self.spooled = 0  # items ever appended (for tests and metrics)

    def append(self, items: Sequence[Item]) -> None:
        """Write `items`, one line each, in one `write()` where they fit; raises OSError when
        the disk refuses (the caller logs it: nothing else is left to keep them)."""
        data = b"".join(_encode(item) + b"\n" for item in items)
        with self._lock:
            if self._active is None:
                self._active = self._create()
            fd = self._active[1]
            while data:  # a short write (a full disk) is finished, or fails, here
                data = data[os.write(fd, data):]
            self._lines += len(items)
            self.spooled += len(items)
            if self._lines >= FILE_ITEMS:
                self._seal()

    def has_any(self) -> bool:
        """Whether anything is spooled here, by this process or a dead one."""
        with self._lock:
            if self._active is not None or self._mine:
                return True
        return any(self.folder.glob("*.spool"))

    def take(self) -> SpoolFile | None:
        """The oldest spooled file to replay: this process's own (the active one sealed first),
        else one a dead process left (None when there is none)."""
        with self._lock:
            if not self._mine and self._active is not None:
                self._seal()
            if self._mine:
                path, fd = self._mine.pop(0)
                return SpoolFile(path, fd, _read(path, fd))
        own = {p.name for p, _ in self._mine}
        for path in sorted(self.folder.glob("*.spool")):
            if path.name in own or (self._active is not None and path == self._active[0]):
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # replayed by another store meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live store's: it replays its own
                os.close(fd)
                continue
            if not path.exists():  # replayed and deleted between the glob and the lock
                os.close(fd)
                continue
            return SpoolFile(path, fd, _read(path, fd))
        return None

    def replayed(self, spooled: SpoolFile) -> None:
        """Every item of `spooled` is in Postgres: delete the file, then let go of its lock."""
        spooled.path.unlink(missing_ok=True)
        os.close(spooled.fd)

    def put_back(self, spooled: SpoolFile) -> None:
        """Its replay failed: keep it for the next try (first in line, if it is this process's)."""
        with self._lock:
            self._mine.insert(0, (spooled.path, spooled.fd))

    def close(self) -> None:
        """Let go of every file (they stay, for the next store on this folder to replay)."""
        with self._lock:
            if self._active is not None:
                self._seal()
            for _, fd in self._mine:
                os.close(fd)
            self._mine.clear()

    def _seal(self) -> None:  # under `_lock`
        assert self._active is not None
        self._mine.append(self._active)
        self._active, self._lines = None, 0

    def _create(self) -> tuple[Path, int]:
        while True:
            path = self.folder / f"{os.getpid()}.{self._seq}.spool"
            self._seq += 1
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # a dead process with this pid left one (replayed apart)
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            return path, fd


def _read(path: Path, fd: int) -> list[Item]:
    with os.fdopen(os.dup(fd), "rb") as file:
        file.seek(0)
        data = file.read()
    lines = data.split(b"\n")
    if lines[-1]:
        log.warning("%s: skipping a torn last line (%d bytes)", path, len(lines[-1]))
    items = []
    for number, line in enumerate(lines[:-1], 1):
        try:
            items.append(_decode(line))
        except msgspec.DecodeError as exc:
            log.warning("%s:%d: skipping an unreadable line (%s)", path, number, exc)
    return items
