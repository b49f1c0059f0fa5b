"""The processes a bench runs against: the stand-in upstream, `taskroute serve`, the LiteLLM
proxy. Each is its own process on 127.0.0.1 logging to bench/out/, waited for until it answers
HTTP, and stopped (last started, first stopped) when the bench's `Processes` block ends, however
it ends. LiteLLM, pinned, is installed on first use into its own virtual environment there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import aiohttp

LITELLM_VERSION = "1.106.2"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes]) -> bool:
    """Does `url` answer (any status below 500) within `seconds`, before `proc` exits?"""
    async def probe() -> bool:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return False
                try:
                    async with client.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status < 500:
                            return True
                except (TimeoutError, aiohttp.ClientError):
                    pass
                await asyncio.sleep(0.2)
        return False

    return asyncio.run(probe())


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, cwd=ROOT)


def stop(proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Ask `proc` to end (SIGTERM: a server drains), killing it after `seconds`."""
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()


def fresh_db(path: Path) -> Path:
    """`path` with no SQLite log there from an earlier run (nor its -wal, -shm files)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


class Processes:
    """The processes one bench (or one setup of it) started; all stopped when the block ends."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        while self._procs:
            stop(self._procs.pop())

    def serve(self, what: str, cmd: list[str], log: Path, probe: str, seconds: float,
              env: dict[str, str] | None = None) -> bool:
        """Start `cmd`; True once `probe` answers, else False, having said so and where the
        log is."""
        self._procs.append(start(cmd, log, env))
        if wait_http(probe, seconds, self._procs[-1]):
            return True
        print(f"{what} did not start; see {log.relative_to(ROOT)}")
        return False

    def stand_in(self, log: Path, *args: str, what: str = "the stand-in upstream"
                 ) -> str | None:
        """The SIMULATED upstream (`args`: its flags, `--control`); its URL, or None."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "taskroute.providers.simulated", "--port", str(port), *args]
        return url if self.serve(what, cmd, log, url + "/v1/models", 20) else None

    def taskroute(self, policy: Path, log: Path, *args: str, env: dict[str, str] | None = None,
                  seconds: float = 30) -> str | None:
        """`taskroute serve` with `policy` (`args`: more flags, `--db ...`); its URL, or None."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "taskroute", "serve", "--policy", str(policy), "--port",
               str(port), *args]
        return url if self.serve("taskroute serve", cmd, log, url + "/healthz", seconds,
                                 env) else None

    def litellm(self, binary: Path, config: Path, log: Path, key: str) -> str | None:
        """The LiteLLM proxy (one worker) with `config` and master key `key`; its URL, or
        None."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1"]
        started = self.serve("LiteLLM skipped: the proxy", cmd, log, url + "/health/liveliness",
                             120, env={"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": key})
        return url if started else None


def litellm_binary() -> Path | None:
    venv = OUT / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if binary.exists() and _installed_version(venv) == LITELLM_VERSION:
        return binary
    print(f"installing LiteLLM {LITELLM_VERSION} into {venv} (first run only)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"litellm[proxy]=={LITELLM_VERSION}"], check=True, timeout=900,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"LiteLLM skipped: could not install litellm[proxy]=={LITELLM_VERSION} ({exc})")
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return binary if binary.exists() else None


def _installed_version(venv: Path) -> str | None:
    try:
        found = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=60)
    except (subprocess.SubprocessError, OSError):
        return None
    return found.stdout.strip() or None
