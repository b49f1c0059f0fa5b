"""What reads the log with no gateway running — `give_feedback` from a script, the training
importer (`taskroute data import store`), `taskroute demo` — takes a store URL as well as a
SQLite file: against the private PostgreSQL, the same as from SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from taskroute.cli.main import main
from taskroute.evaluate.importers import load
from taskroute.exceptions import DuplicateFeedback, UnknownRequest
from taskroute.store import give_feedback
from taskroute.store.logfile import read_rated_answers
from taskroute.store.postgres import PostgresStore
from taskroute.store.sqlite import SqliteStore
from tests.store.conftest import StoreFactory
from tests.store.test_postgres import fill, varied_entries
from tests.store.test_sqlite import make_entry


@pytest.fixture(autouse=True)
def _spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores opened by URL spool into this test's folder."""
    monkeypatch.setenv("TASKROUTE_SPOOL_DIR", str(tmp_path / "url-spool"))


def _stats(url: str) -> dict[str, object]:
    from taskroute.store.postgres_url import default_spool

    store = PostgresStore(url, spool_dir=default_spool(url))  # this test's (see _spool)
    try:
        total: dict[str, object] = asyncio.run(store.route_stats(since_s=None))["total"]
        return total
    finally:
        store.close()


def test_give_feedback_takes_a_postgres_url(open_pg: StoreFactory, pg_url: str) -> None:
    store = open_pg()
    store.add(make_entry("r1"))
    store.add(dataclasses.replace(make_entry("r3"), prompt="Sort the list.", answer="Ok."))
    store.close()
    given = give_feedback(pg_url, "r1", score=0.25, text="too long")
    assert given.score == 0.25
    with pytest.raises(DuplicateFeedback):
        give_feedback(pg_url, "r1", thumbs="up")
    with pytest.raises(UnknownRequest):
        give_feedback(pg_url, "r2", thumbs="up")
    give_feedback(pg_url, "r3", corrected=True, task="coding")
    total = _stats(pg_url)
    assert total["feedback"] == 2 and total["score"] == 0.25
    (answer,) = read_rated_answers(pg_url)  # r1 logged no prompt
    assert (answer.prompt, answer.named_task, answer.feedback_task) == (
        "Sort the list.", "coding", "coding")


def test_the_training_importer_reads_a_postgres_log_as_it_reads_sqlite(
    open_pg: StoreFactory, pg_url: str, tmp_path: Path,
) -> None:
    entries = varied_entries(90)
    sqlite, pg = SqliteStore(tmp_path / "log.db"), open_pg()

    async def both() -> None:
        for store in (sqlite, pg):
            await fill(store, entries)
        await sqlite.aclose()

    asyncio.run(both())
    pg.close()
    from_sqlite = load("store", str(tmp_path / "log.db"))
    from_pg = load("store", pg_url)
    assert from_sqlite  # the feedback made rated answers
    assert [dataclasses.asdict(r) for r in from_pg] == [dataclasses.asdict(r)
                                                          for r in from_sqlite]
    out = tmp_path / "outcomes.jsonl"
    assert main(["data", "import", "store", pg_url, "-o", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(from_pg)


def test_the_demo_logs_to_a_postgres_url(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--db", pg_url, "--concurrency", "4"]) == 0
    out = capsys.readouterr().out
    sent = re.search(r"every one of the (\d+) is in the request log at (\S+)\.", out)
    assert sent is not None, out
    assert sent.group(2) == pg_url  # no password in it to hide
    assert int(sent.group(1)) > 0
    assert _stats(pg_url)["requests"] == int(sent.group(1))
