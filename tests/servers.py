"""Real database servers for tests and benches, each private: started on a free loopback port in
a temporary folder, stopped and removed afterwards. No driver is imported here (only
`taskroute/store/` does that); the servers are Debian's packages, found on disk.

    with PostgresCluster.started() as pg:      # skips the test when no binaries are found
        url = pg.new_database()                # postgresql://postgres@127.0.0.1:PORT/t_1
        pg.stop(); pg.start()                  # same port and data: a restart mid-load

    with RedisServer() as redis:               # redis-server, persistence off (see below)
        redis.stop(); redis.start()            # same port, empty: Redis keeps nothing here

`initdb` refuses to run as root, so as root every server command runs as the `postgres` user
(`runuser -u postgres --`) in a folder that user owns.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
               "/usr/lib/postgresql/15/bin")
PG_INSTALL = "PostgreSQL is not installed: apt-get install -y postgresql (Debian's, 15 or later)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pg_bin() -> Path | None:
    """The folder with initdb and pg_ctl (TASKROUTE_PG_BIN, Debian's, or the PATH's)."""
    candidates = [os.environ.get("TASKROUTE_PG_BIN", ""), *PG_BIN_DIRS]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class PostgresCluster:
    """One private cluster: `trust` auth on 127.0.0.1 only, its socket in its own folder."""

    def __init__(self, bin_dir: Path, root: Path, *, fsync: bool = False) -> None:
        self.bin, self.root, self.port = bin_dir, root, free_port()
        self.data = root / "data"
        self._fsync = fsync
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            postgres = pwd.getpwnam("postgres")
            os.chown(root, postgres.pw_uid, postgres.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C")

    @classmethod
    @contextmanager
    def started(cls, *, fsync: bool = False) -> Iterator[PostgresCluster]:
        """A running cluster, removed afterwards; `pytest.skip`s when there are no binaries."""
        bin_dir = pg_bin()
        if bin_dir is None:
            import pytest

            pytest.skip(PG_INSTALL)
        root = Path(tempfile.mkdtemp(prefix="taskroute-pg-"))
        try:
            cluster = cls(bin_dir, root, fsync=fsync)
            cluster.start()
            try:
                yield cluster
            finally:
                cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   f"-c fsync={'on' if self._fsync else 'off'} -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: open connections are cut, committed data kept)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop",
                  check=False)

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{next(self._names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url_of(name)

    def psql(self, database: str, sql: str) -> str:
        """`sql` run by psql, its rows as text (unaligned, tuples only)."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)

    def _run(self, tool: str, *args: str, check: bool = True) -> str:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              cwd=self.root, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout


# -- Redis ----------------------------------------------------------------------------------------

REDIS_INSTALL = ("redis-server is not installed: apt-get install -y redis-server "
                "(Debian/Ubuntu), brew install redis (macOS)")


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="taskroute-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(REDIS_INSTALL)
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._dir), "--protected-mode", "yes",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections and answers nothing (Redis "slow")."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
