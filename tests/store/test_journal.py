"""The acknowledgement journal: an entry `add` returned from survives the process dying before
the writer committed it (the next open replays it); torn lines are skipped; committed entries
leave the journal; a live store's journal is left to it."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taskroute.store import SqliteStore
from tests.gateway.test_shutdown import ROOT
from tests.store.test_sqlite import make_entry, rows


def die_after_adding(db: Path, count: int, *, interval_s: float) -> None:
    """In a child process: add `count` entries, then die at once (no flush, no close)."""
    script = textwrap.dedent(f"""
        import os
        from taskroute.store import SqliteStore
        from tests.store.test_sqlite import make_entry
        store = SqliteStore({str(db)!r}, interval_s={interval_s!r})
        for i in range({count}):
            store.add(make_entry(f"r{{i}}", escalate=i % 2 == 1))
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def journals(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f"{db.name}-ack.*"))


def logged(db: Path) -> set[str]:
    return {str(r[0]) for r in rows(db, "SELECT request_id FROM requests")}


def test_entries_added_before_the_process_died_are_replayed_on_open(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    die_after_adding(db, 50, interval_s=60.0)  # the writer never woke: nothing committed
    assert rows(db, "SELECT count(*) FROM requests") == [(0,)]
    assert journals(db)
    SqliteStore(db).close()
    assert logged(db) == {f"r{i}" for i in range(50)}
    attempts = rows(db, "SELECT count(*) FROM attempts")
    assert attempts == [(75,)]  # escalated ones have two
    assert journals(db) == []  # replayed, then gone


def test_appends_racing_the_writers_commits_are_never_lost(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    die_after_adding(db, 3000, interval_s=0.0005)  # the writer seals and commits all along
    SqliteStore(db).close()
    assert logged(db) == {f"r{i}" for i in range(3000)}


def test_replaying_rows_already_committed_is_harmless(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    die_after_adding(db, 10, interval_s=60.0)
    journal = journals(db)[0].read_bytes()
    SqliteStore(db).close()
    (tmp_path / "log.db-ack.1.0").write_bytes(journal)  # as if the delete had not happened
    SqliteStore(db).close()
    assert rows(db, "SELECT count(*) FROM requests") == [(10,)]
    assert rows(db, "SELECT count(*) FROM attempts") == [(15,)]


def test_a_torn_last_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "log.db"
    die_after_adding(db, 3, interval_s=60.0)
    [journal] = journals(db)
    data = journal.read_bytes()
    cut = data.rindex(b"\n", 0, len(data) - 1) + 1  # the start of the last line
    journal.write_bytes(data[: cut + (len(data) - cut) // 2])  # died mid-write of it
    with caplog.at_level(logging.WARNING):
        SqliteStore(db).close()
    assert logged(db) == {"r0", "r1"}
    assert "torn last line" in caplog.text


async def test_the_journal_empties_as_the_writer_commits(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = SqliteStore(db, interval_s=60.0)
    for i in range(5):
        store.add(make_entry(f"r{i}"))
    assert sum(p.read_bytes().count(b"\n") for p in journals(db)) == 5
    await store.acknowledged()  # already done: nothing to wait for
    await store.flush()
    assert [p.stat().st_size for p in journals(db)] == [0]  # sealed, committed, deleted
    await store.aclose()
    assert journals(db) == []


async def test_a_live_stores_journal_is_not_taken_by_another_open(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = SqliteStore(db, interval_s=60.0)
    store.add(make_entry("r1"))
    SqliteStore(db).close()  # a second opener (the CLI's stats, say) while it runs
    assert rows(db, "SELECT count(*) FROM requests") == [(0,)]
    assert sum(p.read_bytes().count(b"\n") for p in journals(db)) == 1
    await store.aclose()
    assert logged(db) == {"r1"}


async def test_a_failed_commit_leaves_its_entries_journaled(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = SqliteStore(db, interval_s=60.0)
    with sqlite3.connect(db) as conn:  # every insert into requests now fails
        conn.execute("CREATE TRIGGER no BEFORE INSERT ON requests BEGIN "
                     "SELECT RAISE(ABORT, 'disk full'); END")
    store.add(make_entry("r1"))
    await store.flush()
    await store.aclose()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER no")
    SqliteStore(db).close()
    assert logged(db) == {"r1"}


def test_a_journal_the_schema_rejects_is_kept_and_the_log_opens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "log.db"
    SqliteStore(db).close()
    journal = tmp_path / "log.db-ack.1.0"
    journal.write_bytes(b'[["r1", 1.0], []]\n')  # too few columns (a different schema, say)
    with caplog.at_level(logging.ERROR):
        SqliteStore(db).close()
    assert "could not replay 1 journaled requests" in caplog.text
    assert journal.exists()


async def test_a_journal_that_cannot_be_written_does_not_stop_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    db = tmp_path / "log.db"
    store = SqliteStore(db, interval_s=60.0)
    monkeypatch.setattr(os, "write", disk_full)
    with caplog.at_level(logging.ERROR):
        store.add(make_entry("r1"))
        store.add(make_entry("r2"))
    monkeypatch.undo()
    assert caplog.text.count("cannot journal the request log") == 1  # once, not per request
    await store.aclose()
    assert logged(db) == {"r1", "r2"}
