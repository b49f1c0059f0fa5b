"""`taskroute serve --workers N`: N worker processes on one port (SO_REUSEPORT: each worker
binds the same address and the kernel spreads connections across them). The parent starts the
workers, forwards SIGTERM and SIGINT to them (SIGHUP to one: its reload is broadcast to the
rest) and waits for them all.

What the workers share: the log (the same SQLite file, or Postgres), and the state of rate
limits, budgets, sessions, open breakers and reloads — in Redis with `--redis`, else in one
SQLite file of their own next to nothing else (`SqliteState`, a temporary folder the parent
removes afterwards), so budgets and rate limits hold across the workers either way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from taskroute.exceptions import CallerError

ENV_WORKER = "TASKROUTE_WORKER"   # set in each worker: its number, from 1
# The options a worker is started with, as the parent was given them.
PASSED = (("--policy", "policy"), ("--host", "host"), ("--port", "port"), ("--db", "db"),
          ("--store", "store"), ("--sessions", "sessions"), ("--redis", "redis"),
          ("--rate-limit", "rate_limit"), ("--hold-expiry", "hold_expiry"))


def worker_argv(args: argparse.Namespace, shared_file: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "taskroute", "serve", "--reuse-port"]
    for flag, attr in PASSED:
        value = getattr(args, attr, None)
        if value is not None:
            argv += [flag, str(value)]
    if shared_file is not None:
        argv += ["--shared-file", str(shared_file)]
    return argv


def run_workers(args: argparse.Namespace) -> int:
    """Start `args.workers` workers and wait for them; their exit status, the worst of them."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise CallerError("--workers needs SO_REUSEPORT (Linux, BSD, macOS); run one process "
                          "per port behind a load balancer instead")
    if args.port == 0:
        raise CallerError("--workers needs a fixed --port: each worker binds the same one")
    folder = None
    shared_file = None
    if not (args.redis or os.environ.get("TASKROUTE_REDIS_URL", "").strip()):
        folder = Path(tempfile.mkdtemp(prefix="taskroute-workers-"))
        shared_file = folder / "shared.db"
    argv = worker_argv(args, shared_file)
    print(f"taskroute: {args.workers} workers on http://{args.host}:{args.port}, sharing "
          f"{'Redis' if shared_file is None else 'the counters file ' + str(shared_file)}",
          flush=True)
    workers = [subprocess.Popen(argv, env={**os.environ, ENV_WORKER: str(i + 1)})
               for i in range(args.workers)]

    def forward(signum: int, _frame: FrameType | None) -> None:
        alive = [worker for worker in workers if worker.poll() is None]
        # a reload goes to one worker, whose broadcast reaches the others (each reloading
        # once, not once per worker); a stop goes to all
        for worker in alive[:1] if signum == signal.SIGHUP else alive:
            worker.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        codes = [worker.wait() for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return max((abs(code) for code in codes), default=0)
