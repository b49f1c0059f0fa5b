"""A plugin distribution made on disk, as an install leaves one: its module beside a
`.dist-info` folder (METADATA, entry_points.txt) in a folder on sys.path, which
importlib.metadata discovers. It brings a provider kind (the OpenAI wire with the key in its
own header), a gate and a classifier."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from taskroute import plugins

DIST, VERSION, MODULE = "taskroute-keyheader", "0.3", "taskroute_keyheader"
KEY, KEY_ENV = "sk-plugin-test-0123456789", "KEYHEADER_TEST_KEY"

PLUGIN_SOURCE = '''\
"""taskroute-keyheader: the OpenAI wire with the key in a header of one's choosing, a gate that
wants a word in the answer, and a classifier that names one task class."""

from taskroute.classify.base import Prediction
from taskroute.gates.base import verdict
from taskroute.providers.openai import OpenAIProvider


def provider(spec, env):
    unknown = sorted(set(spec.options) - {"key_header"})
    if unknown:
        raise ValueError(f"the keyheader kind takes only 'key header', got {', '.join(unknown)}")
    header = str(spec.options.get("key_header", "x-api-key"))
    return OpenAIProvider(spec, env=env, key_header=header, key_prefix="")


class MentionsGate:
    name = "mentions"

    def __init__(self, word):
        self.word = word

    def check(self, answer, request):
        if self.word in answer.text:
            return verdict(self.name, True)
        return verdict(self.name, False, f"the answer does not mention {self.word!r}")


def gate(settings, env):
    if set(settings) != {"word"}:
        raise ValueError("the mentions gate takes one setting, 'word'")
    return MentionsGate(str(settings["word"]))


class FixedClassifier:
    def __init__(self, task):
        self.task = task

    def predict(self, text):
        return Prediction(self.task, 1.0)


def classifier(settings):
    return FixedClassifier(str(settings.options.get("task", "chat")))
'''

ENTRY_POINTS = f"""\
[taskroute.providers]
keyheader = {MODULE}:provider

[taskroute.gates]
mentions = {MODULE}:gate

[taskroute.classifiers]
fixed = {MODULE}:classifier
"""


def write_distribution(
    folder: Path, name: str, version: str, entry_points: str, modules: Mapping[str, str]
) -> Path:
    """What `pip install` leaves in site-packages, minus the RECORD."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source, encoding="utf-8")
    return folder


def installed(
    monkeypatch: pytest.MonkeyPatch, folder: Path, modules: tuple[str, ...]
) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(folder))
    plugins.refresh()
    yield folder
    for module in modules:
        sys.modules.pop(module, None)
    plugins.refresh()  # read again, lazily, once sys.path is restored


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test plugin, installed for this test only."""
    folder = write_distribution(tmp_path / "site", DIST, VERSION, ENTRY_POINTS,
                                {MODULE: PLUGIN_SOURCE})
    yield from installed(monkeypatch, folder, (MODULE,))


def plugin_policy(base_url: str) -> str:
    """A policy whose one provider, one gate and classifier all come from the plugin."""
    return f"""\
name: plugged
providers:
  vendor:
    api: keyheader
    base url: {base_url}
    api key env: {KEY_ENV}
    options: {{key header: x-api-key}}
models:
  vendor/small: {{tier: fast, price: {{input: 1, output: 1}}}}
  vendor/large: {{tier: strong, price: {{input: 9, output: 9}}}}
tiers:
  fast: {{use: vendor/small, escalate to: [vendor/large]}}
  strong: {{use: vendor/large}}
tasks:
  chat: fast
  extraction:
    tier: fast
    gates: [{{mentions: {{word: large}}}}]
classifier:
  use: fixed
  options: {{task: extraction}}
"""
