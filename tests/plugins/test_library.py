"""An installed plugin's provider kind, gate and classifier, found by entry point and used
through the library exactly as the built-ins are."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskroute import plugins
from taskroute.exceptions import PluginError, PolicyError
from taskroute.policy.loader import parse_policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from tests.plugins.conftest import (
    DIST,
    KEY,
    KEY_ENV,
    MODULE,
    VERSION,
    installed,
    plugin_policy,
    write_distribution,
)

GATED = """\
models:
  a/small: {{tier: fast, price: {{input: 1, output: 1}}}}
tiers:
  fast: {{use: a/small}}
tasks:
  chat: {{tier: fast, gates: [{gate}]}}
classifier: {{use: {classifier}}}
"""
PROMPT = {"messages": [{"role": "user", "content": "Pull the dates out of this memo."}]}


def test_entries_name_their_distribution_and_built_ins_say_so(plugin_dir: Path) -> None:
    entry = plugins.PROVIDERS.entry("keyheader")
    assert entry is not None
    assert entry.origin == f"distribution {DIST} {VERSION} ({MODULE}:provider)"
    assert plugins.PROVIDERS.names() == ["anthropic", "azure", "bedrock", "gemini", "keyheader",
                                         "openai"]
    assert "mentions" in plugins.GATES and "fixed" in plugins.CLASSIFIERS
    assert plugins.PROVIDERS.entry("openai").origin == "built-in"  # type: ignore[union-attr]


def test_nothing_is_imported_until_a_plugin_name_is_used(plugin_dir: Path) -> None:
    import sys

    parse_policy(plugin_policy("http://127.0.0.1:1/v1"), file="p.yaml")
    assert MODULE not in sys.modules   # the loader checks names only
    plugins.GATES.load("mentions")
    assert MODULE in sys.modules


async def test_a_policy_routes_and_calls_through_the_plugin_kind_gate_and_classifier(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    async with SimulatedUpstream(api_key=KEY) as upstream:
        router = Router(parse_policy(plugin_policy(upstream.base_url), file="p.yaml"))
        try:
            decision = router.decide(PROMPT)
            assert (decision.task, decision.task_source) == ("extraction", "classifier")
            result = await router.complete(PROMPT)
        finally:
            await router.aclose()
    first, second = result.record.attempts
    assert first.model == "vendor/small" and [v.gate for v in first.verdicts] == ["mentions"]
    assert not first.verdicts[0].passed and "does not mention 'large'" in first.verdicts[0].reason
    assert second.model == "vendor/large" and second.verdicts[0].passed
    assert result.response.text.startswith("large answers:")
    sent = upstream.last_headers["small"]
    assert sent["x-api-key"] == KEY and "Authorization" not in sent  # the plugin's own wire


def test_a_plugin_kind_refuses_options_it_does_not_take(plugin_dir: Path) -> None:
    text = plugin_policy("http://127.0.0.1:1/v1").replace("{key header: x-api-key}",
                                                          "{key heder: x-api-key}")
    with pytest.raises(PolicyError, match=r"p\.yaml:3.*takes only 'key header', got key_heder"):
        Router(parse_policy(text, file="p.yaml"), classifier=False).engine  # noqa: B018


def test_without_the_plugin_its_names_are_unknown_at_the_policy_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(plugin_policy("http://127.0.0.1:1/v1"), file="p.yaml")
    assert str(caught.value).startswith("p.yaml:4") and "unknown provider kind 'keyheader'" in \
        str(caught.value)


def test_an_unknown_classifier_fails_at_load_naming_line_and_known_ones() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(GATED.format(gate="non_empty", classifier="bert"), file="p.yaml")
    message = str(caught.value)
    assert message.startswith("p.yaml:7") and "unknown classifier 'bert'; known: linear" in message


def test_a_plugin_cannot_take_a_built_in_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_distribution(tmp_path, "sneaky", "1.0",
                                "[taskroute.providers]\nopenai = sneaky_mod:provider\n", {})
    for _ in installed(monkeypatch, folder, ()):
        assert plugins.PROVIDERS.entry("openai").origin == "built-in"  # type: ignore[union-attr]
        (ignored,) = [e for e in plugins.PROVIDERS.entries() if e.distribution == "sneaky"]
        assert ignored.ignored == "the name 'openai' is taken by built-in"


def test_a_broken_entry_point_is_one_line_naming_distribution_and_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_distribution(tmp_path, "taskroute-broken", "1.0",
                                "[taskroute.gates]\nshouty = taskroute_broken_mod:gate\n",
                                {"taskroute_broken_mod": "import not_a_module_anywhere\n"})
    for _ in installed(monkeypatch, folder, ("taskroute_broken_mod",)):
        assert "shouty" in plugins.GATES  # listed: finding it imports nothing
        with pytest.raises(PluginError) as caught:
            plugins.GATES.load("shouty")
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "the gate 'shouty' from distribution taskroute-broken 1.0 (entry point shouty = "
        "taskroute_broken_mod:gate in taskroute.gates) cannot be loaded: "
        "ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )


def test_a_plugin_factory_that_fails_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_distribution(tmp_path, "taskroute-lonely", "0.1",
                                "[taskroute.gates]\nlonely = tr_lonely:gate\n",
                                {"tr_lonely": "def gate(settings):\n    return None\n"})
    for _ in installed(monkeypatch, folder, ("tr_lonely",)):
        policy = parse_policy(GATED.format(gate="lonely", classifier="linear"), file="p.yaml")
        with pytest.raises(PluginError) as caught:
            Router(policy, classifier=False)
    assert str(caught.value) == (
        "the gate 'lonely' from distribution taskroute-lonely 0.1 (entry point lonely = "
        "tr_lonely:gate in taskroute.gates) failed: TypeError: gate() takes 1 positional "
        "argument but 2 were given"
    )
