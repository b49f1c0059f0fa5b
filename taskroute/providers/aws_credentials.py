"""AWS credentials and region from the standard sources, in the AWS CLI's order.

Credentials: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
`AWS_SESSION_TOKEN`) unless the policy names a profile; then the profile (the policy's
`profile`, else `AWS_PROFILE`, else `default`) in the shared credentials file
(`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), then in the config file
(`AWS_CONFIG_FILE`, default `~/.aws/config`, where a profile's section is `[profile NAME]`).
With the `taskroute[bedrock]` extra installed, botocore's own chain is asked last, which adds
SSO, assume-role, `credential_process` and the EC2/ECS instance roles.

Region: the policy's `region`, else the one in the base URL
(`bedrock-runtime.us-east-1.amazonaws.com`), else `AWS_REGION`, `AWS_DEFAULT_REGION`, else the
profile's `region` in the config file.

Reading files is blocking I/O: the provider calls `resolve` in a worker thread, once.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from taskroute.exceptions import ConfigError, Secret
from taskroute.providers.sigv4 import Credentials

_HOST_REGION = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


@dataclass(frozen=True, slots=True)
class AwsConfig:
    credentials: Credentials
    region: str


def _files(env: Mapping[str, str]) -> tuple[Path, Path]:
    home = Path(env.get("HOME") or Path.home())
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    config = env.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config")
    return Path(credentials).expanduser(), Path(config).expanduser()


def _section(path: Path, name: str) -> dict[str, str]:
    if not path.is_file():
        return {}
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"cannot read the AWS file {path}: {exc}") from None
    return dict(parser[name]) if parser.has_section(name) else {}


def _from(values: Mapping[str, str], source: str) -> Credentials | None:
    key, secret = values.get("aws_access_key_id", ""), values.get("aws_secret_access_key", "")
    if not key.strip() or not secret.strip():
        return None
    token = values.get("aws_session_token", "").strip()
    return Credentials(key.strip(), Secret(secret.strip()), Secret(token) if token else None,
                       source=source)


def _botocore(profile: str | None) -> Credentials | None:
    try:
        import botocore.session  # the bedrock extra: the full credential chain
    except ImportError:
        return None
    session = botocore.session.Session(profile=profile)
    found = session.get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, Secret(frozen.secret_key),
                       Secret(frozen.token) if frozen.token else None,
                       source=f"botocore ({getattr(found, 'method', 'chain')})")


def resolve(
    env: Mapping[str, str] | None = None, *, profile: str | None = None,
    region: str | None = None, base_url: str = "", use_botocore: bool = True,
) -> AwsConfig:
    """The credentials and region to sign with; `ConfigError` saying where it looked."""
    env = os.environ if env is None else env
    credentials_file, config_file = _files(env)
    chosen = profile or env.get("AWS_PROFILE") or "default"
    found = None
    if profile is None:
        found = _from({"aws_access_key_id": env.get("AWS_ACCESS_KEY_ID", ""),
                       "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", ""),
                       "aws_session_token": env.get("AWS_SESSION_TOKEN", "")}, "environment")
    config_section = _section(config_file, chosen if chosen == "default" else f"profile {chosen}")
    found = (found or _from(_section(credentials_file, chosen), f"{credentials_file} [{chosen}]")
             or _from(config_section, f"{config_file} [{chosen}]"))
    if found is None and use_botocore:
        found = _botocore(profile)
    if found is None:
        raise ConfigError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            f"give profile {chosen!r} keys in {credentials_file} (install taskroute[bedrock] "
            "for SSO, assume-role and instance roles)")
    host = re.sub(r"^https?://", "", base_url)
    in_url = _HOST_REGION.match(host)
    chosen_region = (region or (in_url.group(1) if in_url else None) or env.get("AWS_REGION")
                     or env.get("AWS_DEFAULT_REGION") or config_section.get("region"))
    if not chosen_region:
        raise ConfigError("no AWS region: set options: {region: us-east-1} on the provider, or "
                          "AWS_REGION")
    return AwsConfig(found, chosen_region.strip())
