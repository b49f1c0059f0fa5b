"""One script run by several Python processes at the same moment, for races between processes
(`serve --workers` starting its workers at once on files none has made yet).

    codes, errors = run_together(SCRIPT, tmp_path)    # SCRIPT reads sys.argv[1:]: folder, start
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

LEAD_S = 2.0  # the shared start lies this far ahead: after every interpreter has started


def run_together(script: str, folder: Path, processes: int = 3, *, timeout: float = 60.0
                 ) -> tuple[list[int], list[str]]:
    """Run `script` in `processes` interpreters, each given `folder` and the wall-clock start
    (unix seconds) to wait for; their exit codes and standard errors, in start order."""
    start = time.time() + LEAD_S
    procs = [subprocess.Popen([sys.executable, "-c", script, str(folder), str(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    errors = [proc.communicate(timeout=timeout)[1] for proc in procs]
    return [proc.returncode for proc in procs], errors
