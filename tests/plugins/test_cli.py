"""`taskroute plugins` lists every extension point's entries and where each came from; a broken
plugin is one line, in the listing and wherever a policy uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskroute.cli.main import main
from tests.gateway.test_shutdown import ROOT
from tests.plugins.conftest import DIST, MODULE, VERSION, installed, write_distribution


def test_lists_the_plugins_entries_with_their_distribution(
    plugin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    origin = f"distribution {DIST} {VERSION}"
    for heading, name, attr in (("provider kinds (taskroute.providers)", "keyheader", "provider"),
                                ("gates (taskroute.gates)", "mentions", "gate"),
                                ("classifiers (taskroute.classifiers)", "fixed", "classifier")):
        section = out.split(heading, 1)[1].split("\n\n", 1)[0]
        line = next(ln for ln in section.splitlines() if ln.split()[:1] == [name])
        assert f"{origin} ({MODULE}:{attr})" in line
    assert ("stores (taskroute.stores)\n  postgres    built-in\n  postgresql  built-in\n"
            "  sqlite      built-in") in out
    assert "session backends (taskroute.sessions)\n  memory  built-in" in out


def test_json_lists_the_same(plugin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = [r for r in report["taskroute.gates"] if r["name"] == "mentions"]
    assert row == {"name": "mentions", "origin": f"distribution {DIST} {VERSION} ({MODULE}:gate)",
                   "distribution": DIST, "version": VERSION, "ref": f"{MODULE}:gate",
                   "ignored": None, "error": None}
    assert {r["name"] for r in report["taskroute.providers"]} == {
        "openai", "anthropic", "azure", "gemini", "bedrock", "keyheader"}


def test_a_fresh_process_finds_the_plugin_on_its_path(plugin_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taskroute", "plugins", "--json"], cwd=ROOT, capture_output=True,
        text=True, timeout=30, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(plugin_dir)))},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["name"], r["distribution"]) for r in report["taskroute.classifiers"]] == [
        ("linear", None), ("fixed", DIST)]


def test_serve_refuses_both_db_and_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", "a.db", "--store", "sqlite:b.db"]) == 1
    assert capsys.readouterr().err == "taskroute: error: give --store or --db, not both\n"


POLICY = """\
models:
  a/small: {tier: fast, price: {input: 1, output: 1}}
tiers:
  fast: {use: a/small}
tasks:
  chat: {tier: fast, gates: [shouty]}
classifier: false
"""


def test_a_broken_plugin_is_one_line_in_the_listing_and_when_a_policy_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_distribution(tmp_path / "site", "taskroute-broken", "1.0",
                                "[taskroute.gates]\nshouty = taskroute_broken_mod:gate\n",
                                {"taskroute_broken_mod": "def gate(:\n"})
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    for _ in installed(monkeypatch, folder, ("taskroute_broken_mod",)):
        assert main(["plugins"]) == 1
        (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "shouty" in ln]
        assert "BROKEN: the gate 'shouty' from distribution taskroute-broken 1.0" in line
        assert "SyntaxError" in line
        assert main(["policy", "check", str(tmp_path / "p.yaml")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith("taskroute: error: the gate 'shouty' from distribution "
                              "taskroute-broken 1.0 (entry point shouty = "
                              "taskroute_broken_mod:gate in taskroute.gates) cannot be loaded: "
                              "SyntaxError: ")
