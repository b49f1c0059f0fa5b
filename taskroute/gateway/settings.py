"""What the gateway is configured with, read from arguments or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from taskroute.exceptions import ConfigError, Secret
from taskroute.gateway.keys import ENV_KEY_SALT, ApiKey
from taskroute.gateway.keys import from_env as keys_from_env

ENV_API_KEYS = "TASKROUTE_API_KEYS"            # comma-separated bearer tokens
ENV_RATE_LIMIT = "TASKROUTE_RATE_LIMIT_RPM"    # requests per minute per key
ENV_MAX_BODY = "TASKROUTE_MAX_BODY_BYTES"
ENV_WRONG_KEY_LIMIT = "TASKROUTE_WRONG_KEY_LIMIT"  # wrong keys per address a minute, then 429
DEFAULT_MAX_BODY = 4 * 1024 * 1024
# -- connection limits and the drain on SIGTERM (gateway/connections.py, gateway/server.py)
ENV_SECONDS = {  # setting -> its variable, a number of seconds
    "header_timeout_s": "TASKROUTE_HEADER_TIMEOUT_S",
    "body_timeout_s": "TASKROUTE_BODY_TIMEOUT_S",
    "keepalive_timeout_s": "TASKROUTE_KEEPALIVE_TIMEOUT_S",
    "drain_s": "TASKROUTE_DRAIN_S",
}
ENV_MAX_CONNECTIONS = "TASKROUTE_MAX_CONNECTIONS"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    api_keys: tuple[Secret, ...] = ()           # user keys; no key at all: no authentication
    rate_limit_rpm: int | None = None           # per key (per client address without keys)
    max_body_bytes: int = DEFAULT_MAX_BODY
    shutdown_timeout_s: float = 30.0            # how long in-flight requests may take to finish
    # -- connection limits and the drain on SIGTERM
    header_timeout_s: float = 10.0              # a request's head, from its first byte
    body_timeout_s: float = 30.0                # its body, from the end of its head
    keepalive_timeout_s: float = 75.0           # an idle connection between requests
    max_connections: int = 1024                 # open at once; over it, 503 and close
    drain_s: float = 5.0                        # on SIGTERM: /readyz 503, still serving
    extra: Mapping[str, Any] = field(default_factory=dict)
    # -- who may do what (gateway/keys.py, gateway/auth.py) --
    keys: tuple[ApiKey, ...] = ()               # scoped keys; `api_keys` are user keys
    key_salt: Secret | None = None              # the fingerprints' secret (None: per process)
    insecure_no_auth: bool = False              # no keys and no Host check: anyone may call
    wrong_key_limit: int = 10                   # wrong keys per client address in the window,
    wrong_key_window_s: float = 60.0            # then 429 until it passes

    def all_keys(self) -> tuple[ApiKey, ...]:
        """Every configured key: user keys, scoped keys, and `extra["admin_keys"]` (older)."""
        admin = tuple(ApiKey(Secret(str(k)), "admin") for k in self.extra.get("admin_keys", ()))
        return tuple(ApiKey(k) for k in self.api_keys) + self.keys + admin

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, keys_file: str | None = None,
                 **overrides: Any) -> GatewaySettings:
        env = os.environ if env is None else env
        settings = cls(
            api_keys=tuple(Secret(k.strip()) for k in env.get(ENV_API_KEYS, "").split(",")
                           if k.strip()),
            rate_limit_rpm=_positive_int(env, ENV_RATE_LIMIT),
            max_body_bytes=_positive_int(env, ENV_MAX_BODY) or DEFAULT_MAX_BODY,
            keys=keys_from_env(env, keys_file),
            key_salt=Secret(salt) if (salt := env.get(ENV_KEY_SALT, "")) else None,
            wrong_key_limit=_positive_int(env, ENV_WRONG_KEY_LIMIT) or 10,
        )
        settings = replace(settings, **_connection_settings(env))
        return replace(settings, **overrides)


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


def _connection_settings(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, variable in ENV_SECONDS.items():
        raw = env.get(variable, "").strip()
        if raw:
            found[name] = seconds(raw, variable, allow_zero=name == "drain_s")
    if (cap := _positive_int(env, ENV_MAX_CONNECTIONS)) is not None:
        found["max_connections"] = cap
    return found


def seconds(raw: str, name: str, *, allow_zero: bool = False) -> float:
    """A number of seconds from the environment or a flag: positive (or zero, where allowed)."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not (value > 0 or (allow_zero and value == 0)) or value == float("inf"):
        raise ConfigError(f"{name} must be {'zero or ' if allow_zero else ''}a positive "
                          f"number of seconds, not {raw}")
    return value
