"""What the gateway is configured with, read from arguments or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from taskroute.exceptions import ConfigError, Secret

ENV_API_KEYS = "TASKROUTE_API_KEYS"            # comma-separated bearer tokens
ENV_RATE_LIMIT = "TASKROUTE_RATE_LIMIT_RPM"    # requests per minute per key
ENV_MAX_BODY = "TASKROUTE_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    api_keys: tuple[Secret, ...] = ()           # empty: no authentication
    rate_limit_rpm: int | None = None           # per key (per client address without keys)
    max_body_bytes: int = DEFAULT_MAX_BODY
    shutdown_timeout_s: float = 30.0            # how long in-flight requests may take to finish
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> GatewaySettings:
        env = os.environ if env is None else env
        settings = cls(
            api_keys=tuple(Secret(k.strip()) for k in env.get(ENV_API_KEYS, "").split(",")
                           if k.strip()),
            rate_limit_rpm=_positive_int(env, ENV_RATE_LIMIT),
            max_body_bytes=_positive_int(env, ENV_MAX_BODY) or DEFAULT_MAX_BODY,
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
