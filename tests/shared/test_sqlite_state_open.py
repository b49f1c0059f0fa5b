"""`serve --workers N` without Redis: the workers open one new counters file together. WAL mode's
switch is answered "database is locked" at once when another process is making it, so opening
must try again, not fail the worker (seen once in a full run under load)."""

from __future__ import annotations

from pathlib import Path

from tests.together import run_together

_OPEN_TOGETHER = """
import asyncio, sys, time
from taskroute.shared.sqlite_state import SqliteState
folder, start = sys.argv[1], float(sys.argv[2])

async def main() -> None:
    for i in range(10):
        while time.time() < start + i * 0.2:
            time.sleep(0.001)
        state = SqliteState(f"{folder}/shared{i}.db")
        await state.take("key", 1000)   # opens the file on its thread
        await state.aclose()

asyncio.run(main())
"""


def test_workers_opening_one_new_counters_file_together_all_open_it(tmp_path: Path) -> None:
    codes, errors = run_together(_OPEN_TOGETHER, tmp_path)
    assert codes == [0, 0, 0], errors
