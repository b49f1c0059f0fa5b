"""`serve --workers N` without Redis: the workers open one new counters file together. WAL mode's
switch is answered "database is locked" at once when another process is making it, so opening
must try again, not fail the worker (seen once in a full run under load)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
    start = time.time() + 2.0  # after the interpreters have started
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_TOGETHER, str(tmp_path), str(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
