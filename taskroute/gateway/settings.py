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


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    api_keys: tuple[Secret, ...] = ()           # user keys; no key at all: no authentication
    rate_limit_rpm: int | None = None           # per key (per client address without keys)
    max_body_bytes: int = DEFAULT_MAX_BODY
    shutdown_timeout_s: float = 30.0            # how long in-flight requests may take to finish
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
