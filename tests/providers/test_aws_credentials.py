"""AWS credentials and region come from the standard places, in the AWS CLI's order."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskroute.exceptions import ConfigError
from taskroute.providers.aws_credentials import resolve

URL = "https://bedrock-runtime.ap-south-1.amazonaws.com"


def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDFILEDEFAULT\naws_secret_access_key = s1\n"
        "[prod]\naws_access_key_id = AKIDFILEPROD\naws_secret_access_key = s2\n"
        "aws_session_token = t2\n")
    (tmp_path / "config").write_text(
        "[default]\nregion = eu-north-1\n[profile staging]\nregion = sa-east-1\n"
        "aws_access_key_id = AKIDCONFIGSTAGING\naws_secret_access_key = s3\n")
    return {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "config"), "HOME": str(tmp_path)}


def test_the_environment_comes_first(tmp_path: Path) -> None:
    env = {**files(tmp_path), "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s0",
           "AWS_SESSION_TOKEN": "t0", "AWS_REGION": "us-east-2"}
    found = resolve(env, use_botocore=False)
    assert found.credentials.access_key == "AKIDENV"
    assert found.credentials.token is not None and found.credentials.token.reveal() == "t0"
    assert found.region == "us-east-2"
    assert resolve(env, base_url=URL, use_botocore=False).region == "ap-south-1"
    assert resolve(env, region="me-south-1", base_url=URL, use_botocore=False).region == (
        "me-south-1")


def test_profiles_from_the_credentials_then_the_config_file(tmp_path: Path) -> None:
    env = files(tmp_path)
    default = resolve(env, use_botocore=False)
    assert (default.credentials.access_key, default.region) == ("AKIDFILEDEFAULT", "eu-north-1")
    prod = resolve({**env, "AWS_PROFILE": "prod", "AWS_REGION": "us-west-1"},
                   use_botocore=False)
    assert prod.credentials.access_key == "AKIDFILEPROD" and prod.region == "us-west-1"
    staging = resolve({**env, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "x"},
                      profile="staging", use_botocore=False)   # a named profile skips the env
    assert (staging.credentials.access_key, staging.region) == ("AKIDCONFIGSTAGING", "sa-east-1")
    assert "s3" not in repr(staging)


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"AWS_ACCESS_KEY_ID.*nobody"):
        resolve({"HOME": str(tmp_path)}, profile="nobody", use_botocore=False)
    env = {"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}
    with pytest.raises(ConfigError, match="region"):
        resolve(env, use_botocore=False)
