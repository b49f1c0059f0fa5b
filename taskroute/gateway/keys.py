"""The gateway's keys, each with a scope, and the secret their log fingerprints are keyed with.

Scopes: `admin` may do everything (reload too); `read` reads stats, the A/B report, the
dashboard and `/metrics`; `user` makes model calls and gives feedback on its own requests.

From the environment: `TASKROUTE_API_KEYS` (user keys), `TASKROUTE_READ_KEYS` and
`TASKROUTE_ADMIN_KEYS`, each comma-separated; and/or a keys file (`TASKROUTE_KEYS_FILE` or
`serve --keys-file`), YAML or JSON:

    keys:
      - name: billing-app
        env: BILLING_GATEWAY_KEY     # the key's value is read from this variable ...
        scope: user
        rate_limit_rpm: 600          # optional, this key's own limit
      - name: grafana
        key: sk-read-...             # ... or written here (keep the file private)
        scope: read

The fingerprint secret: `TASKROUTE_KEY_SALT`, else one generated once and kept in a file beside
the log (`stored_salt`), so fingerprints stay the same across restarts. Gateways that share one
log (replicas) must share the secret: set the variable.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from taskroute.exceptions import ConfigError, Secret

Scope = Literal["admin", "read", "user"]
SCOPES: tuple[Scope, ...] = ("admin", "read", "user")
ENV_BY_SCOPE: dict[Scope, str] = {
    "user": "TASKROUTE_API_KEYS", "read": "TASKROUTE_READ_KEYS", "admin": "TASKROUTE_ADMIN_KEYS"}
ENV_KEYS_FILE = "TASKROUTE_KEYS_FILE"
ENV_KEY_SALT = "TASKROUTE_KEY_SALT"
_FIELDS = frozenset({"name", "key", "env", "scope", "rate_limit_rpm"})


@dataclass(frozen=True, slots=True)
class ApiKey:
    secret: Secret
    scope: Scope = "user"
    name: str | None = None
    rate_limit_rpm: int | None = None   # None: the gateway's own limit


def from_env(env: Mapping[str, str], keys_file: str | Path | None = None) -> tuple[ApiKey, ...]:
    """The read and admin keys the environment names, then the keys file's (the argument, else
    the variable). User keys (`TASKROUTE_API_KEYS`) are the settings' `api_keys`, as before."""
    found = [ApiKey(Secret(value.strip()), scope)
             for scope, variable in ENV_BY_SCOPE.items() if scope != "user"
             for value in env.get(variable, "").split(",") if value.strip()]
    path = keys_file or env.get(ENV_KEYS_FILE, "").strip()
    if path:
        found += load_keys_file(Path(path), env)
    return tuple(found)


def load_keys_file(path: Path, env: Mapping[str, str]) -> list[ApiKey]:
    """A keys file's keys; every mistake names the file and the entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the keys file ({exc.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    entries = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list of keys under 'keys:'")
    return [_entry(path, i, item, env) for i, item in enumerate(entries, 1)]


def _entry(path: Path, n: int, item: Any, env: Mapping[str, str]) -> ApiKey:
    where = f"{path}: key {n}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping with 'key' or 'env', and 'scope'")
    where += f" ({item['name']})" if isinstance(item.get("name"), str) else ""
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; expected one of "
                          f"{', '.join(sorted(_FIELDS))}")
    scope = item.get("scope", "user")
    if scope not in SCOPES:
        raise ConfigError(f"{where}: scope is one of {', '.join(SCOPES)}, not {scope!r}")
    if ("key" in item) == ("env" in item):
        raise ConfigError(f"{where}: give the key itself ('key') or its variable ('env')")
    value = item["key"] if "key" in item else env.get(str(item["env"]), "")
    if not isinstance(value, str) or not value.strip():
        source = f"variable {item['env']} is not set" if "env" in item else "'key' is empty"
        raise ConfigError(f"{where}: {source}")
    rpm = item.get("rate_limit_rpm")
    if rpm is not None and (not isinstance(rpm, int) or isinstance(rpm, bool) or rpm <= 0):
        raise ConfigError(f"{where}: rate_limit_rpm is a positive whole number, not {rpm!r}")
    name = item.get("name")
    return ApiKey(Secret(value.strip()), cast(Scope, scope),
                  str(name) if name is not None else None, rpm)


def stored_salt(beside: Path) -> Secret:
    """The fingerprint secret kept in `<beside>.key-salt` (made on first use, owner-only)."""
    path = beside.with_name(beside.name + ".key-salt")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under a name of its own, then linked into place: gateways starting
        # together (`serve --workers`) never read a half-written file, and the first one wins.
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(32) + "\n")
            os.link(draft, path)
        except FileExistsError:
            pass  # made by a gateway starting beside this one: use it
        finally:
            os.unlink(draft)
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 32:
        raise ConfigError(f"{path}: the key salt file is damaged; remove it to make a new one "
                          "(fingerprints in the log will change)")
    return Secret(value)
