"""Stores and session histories chosen by URL (`NAME:LOCATION`) through their registries: the
built-in `sqlite:PATH` and `memory`, and a plugin's own of each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from taskroute.exceptions import ConfigError, PluginError
from taskroute.session import InMemorySessionHistory, open_history
from taskroute.store.registry import open_store
from taskroute.store.sqlite import SqliteStore
from tests.gateway.test_shutdown import ROOT
from tests.plugins.conftest import installed, write_distribution

BACKENDS = '''\
class NullStore:
    def __init__(self, url):
        self.url = url
    def add(self, entry):
        pass
    async def acknowledged(self):
        pass
    async def flush(self):
        pass
    async def aclose(self):
        pass


class SharedHistory:
    def __init__(self, url):
        self.url = url
    def escalations(self, session_id, window_s):
        return 7
    def record_escalation(self, session_id):
        pass
'''


async def test_sqlite_url_opens_the_log_there(tmp_path: Path) -> None:
    store = open_store(f"sqlite:{tmp_path / 'a' / 'log.db'}")
    try:
        assert isinstance(store, SqliteStore) and store.path == tmp_path / "a" / "log.db"
    finally:
        await store.aclose()
    assert (tmp_path / "a" / "log.db").is_file()


def test_unknown_or_unusable_urls_are_one_line_config_errors() -> None:
    known = r"unknown store 'pg'; known: postgres, postgresql, sqlite \(.*sqlite:log"
    with pytest.raises(PluginError, match=known):
        open_store("pg://db.example/log")
    with pytest.raises(ConfigError, match="store 'sqlite:': the sqlite store needs a file"):
        open_store("sqlite:")
    assert isinstance(open_history("memory"), InMemorySessionHistory)
    with pytest.raises(ConfigError, match="memory session history takes no location"):
        open_history("memory:elsewhere")
    with pytest.raises(PluginError, match="unknown session backend 'redis'; known: memory"):
        open_history("redis://cache:6379")


def test_a_plugins_store_and_session_backend_get_the_url_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_distribution(
        tmp_path, "taskroute-backends", "2.0",
        "[taskroute.stores]\nnull = tr_backends:NullStore\n\n"
        "[taskroute.sessions]\nshared = tr_backends:SharedHistory\n",
        {"tr_backends": BACKENDS})
    for _ in installed(monkeypatch, folder, ("tr_backends",)):
        store = open_store("null:anywhere")
        history = open_history("shared://cache:6379/0")
    assert type(store).__name__ == "NullStore"
    assert getattr(store, "url", None) == "null:anywhere"
    assert getattr(history, "url", None) == "shared://cache:6379/0"
    assert history.escalations("s", 60) == 7


def test_importing_taskroute_and_routing_by_the_default_policy_reads_no_entry_points() -> None:
    code = (
        "import taskroute, taskroute.plugins as p\n"
        "assert p._found is None, 'entry points read at import'\n"
        "r = taskroute.Router.default(classifier=False)\n"
        "r.decide({'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "assert p._found is None, 'entry points read for built-in names'\n"
        "p.PROVIDERS.names()\n"
        "assert p._found is not None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
