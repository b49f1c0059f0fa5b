"""Keys from the environment (the old variables keep working) and from a YAML or JSON keys file;
a mistake in the file names the file and the entry, and never shows a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskroute.exceptions import ConfigError, Secret
from taskroute.gateway.keys import ApiKey, load_keys_file
from taskroute.gateway.settings import GatewaySettings


def test_the_environment_gives_user_read_and_admin_keys() -> None:
    settings = GatewaySettings.from_env({
        "TASKROUTE_API_KEYS": "sk-u1, sk-u2", "TASKROUTE_READ_KEYS": "sk-r",
        "TASKROUTE_ADMIN_KEYS": "sk-a", "TASKROUTE_KEY_SALT": "pepper" * 8})
    assert [(k.secret.reveal(), k.scope) for k in settings.all_keys()] == [
        ("sk-u1", "user"), ("sk-u2", "user"), ("sk-r", "read"), ("sk-a", "admin")]
    assert settings.key_salt == Secret("pepper" * 8)


def test_the_older_admin_keys_setting_still_counts() -> None:
    settings = GatewaySettings(extra={"admin_keys": ["sesame"]})
    assert settings.all_keys() == (ApiKey(Secret("sesame"), "admin"),)


def test_a_yaml_keys_file_names_keys_by_value_or_variable(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n"
                    "  - {name: app, env: APP_KEY, scope: user, rate_limit_rpm: 60}\n"
                    "  - {name: grafana, key: sk-read-1, scope: read}\n"
                    "  - {key: sk-root, scope: admin}\n", encoding="utf-8")
    settings = GatewaySettings.from_env({"APP_KEY": "sk-app", "TASKROUTE_KEYS_FILE": str(path)})
    assert settings.keys == (ApiKey(Secret("sk-app"), "user", "app", 60),
                             ApiKey(Secret("sk-read-1"), "read", "grafana"),
                             ApiKey(Secret("sk-root"), "admin"))


def test_a_json_keys_file_given_as_an_argument(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"key": "sk-j", "scope": "read"}]), encoding="utf-8")
    settings = GatewaySettings.from_env({}, keys_file=str(path))
    assert settings.keys == (ApiKey(Secret("sk-j"), "read"),)


@pytest.mark.parametrize(("entry", "says"), [
    ({"key": "sk-x", "scope": "root"}, "scope is one of admin, read, user, not 'root'"),
    ({"key": "sk-x", "colour": "red"}, "unknown field 'colour'"),
    ({"name": "app", "env": "UNSET_KEY"}, "key 1 (app): variable UNSET_KEY is not set"),
    ({"key": "sk-x", "env": "APP_KEY"}, "give the key itself ('key') or its variable ('env')"),
    ({"key": "sk-x", "rate_limit_rpm": 0}, "rate_limit_rpm is a positive whole number"),
    ("sk-x", "expected a mapping"),
])
def test_a_bad_entry_is_named_with_its_file(tmp_path: Path, entry: object, says: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(json.dumps({"keys": [entry]}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_keys_file(path, {})
    assert str(path) in str(caught.value) and says in str(caught.value)
    assert "sk-x" not in str(caught.value)


def test_an_unreadable_or_malformed_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the keys file"):
        load_keys_file(tmp_path / "none.yaml", {})
    bad = tmp_path / "keys.yaml"
    bad.write_text("keys: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid"):
        load_keys_file(bad, {})
