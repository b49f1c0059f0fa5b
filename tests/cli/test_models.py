"""`taskroute models` and the bundled catalogue behind it."""

from __future__ import annotations

import json

import pytest

from taskroute.cli.main import main
from taskroute.models_catalogue import load_catalogue
from taskroute.plugins import PROVIDERS
from taskroute.policy.model import split_model_id


def test_every_catalogue_row_is_a_usable_model_of_a_registered_kind() -> None:
    models = load_catalogue()
    assert {m.kind for m in models} == {"openai", "anthropic", "gemini", "bedrock"}
    for model in models:
        split_model_id(model.id)
        assert model.kind in PROVIDERS
        assert model.context_window >= 100_000
        assert 0 < model.price.input <= model.price.output
        assert model.price.cached_input is None or model.price.cached_input < model.price.input
        assert model.checked[:2] == "20" and model.source != "unknown"


def test_models_lists_kind_tier_context_and_prices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    flash = rows["gemini/gemini-2.5-flash"]
    assert (flash["kind"], flash["tier"], flash["context_window"]) == ("gemini", "fast", 1048576)
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "bedrock/us.amazon.nova-pro-v1:0" in table and "gemini prices checked on" in table


def test_models_of_a_policy_name_their_provider_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib import resources
    path = resources.files("taskroute.data").joinpath("default_policy.yaml")
    assert main(["models", "--policy", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["kind"] for r in rows} == {"openai", "anthropic"}
