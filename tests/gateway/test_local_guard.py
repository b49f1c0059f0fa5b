"""A gateway with no keys serves this machine's own programs only: a POST must declare JSON (so
a web page's cross-site "simple request" is refused) and the Host must be localhost, 127.0.0.1
or [::1] with its port (so DNS rebinding fails); `taskroute serve` will not bind another address
without keys unless told `--insecure-no-auth`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import aiohttp
import pytest

from taskroute.cli.main import main
from taskroute.cli.serve import access_settings, is_loopback
from taskroute.exceptions import CallerError
from taskroute.gateway.settings import GatewaySettings
from tests.gateway.conftest import RunningGateway, StartGateway

HELLO = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})


async def raw_post(gw: RunningGateway, path: str, headers: dict[str, str],
                   body: str = HELLO) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as client, client.post(
            gw.url + path, data=body.encode(), headers=headers,
            skip_auto_headers=["Content-Type"]) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
async def test_a_post_that_is_not_declared_json_is_415(
    gateway: RunningGateway, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    status, body = await raw_post(gateway, "/v1/chat/completions", headers)
    assert status == 415
    assert body["error"]["type"] == "invalid_request_error"    # type: ignore[index]
    assert body["error"]["code"] == "unsupported_media_type"   # type: ignore[index]
    status, body = await raw_post(gateway, "/v1/messages", headers)
    assert status == 415 and body["type"] == "error"            # Anthropic's own shape
    status, _ = await raw_post(gateway, "/v1/taskroute/feedback", headers, "{}")
    assert status == 415
    assert not [r for r in await gateway.log_rows() if r["status"] == "ok"]   # nothing routed
    refused = await gateway.log_rows("SELECT http_status FROM refused")
    assert [r["http_status"] for r in refused] == [415, 415]    # the chat paths' refusals


async def test_json_content_types_are_served(gateway: RunningGateway) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8"):
        status, _ = await raw_post(gateway, "/v1/chat/completions",
                                   {"Content-Type": content_type})
        assert status == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1",
                                  "localhost:{port}0", "127.0.0.1.nip.io:{port}", ""])
async def test_a_host_that_is_not_this_machine_is_refused(
    gateway: RunningGateway, host: str
) -> None:
    port = gateway.url.rsplit(":", 1)[1]
    headers = {"Host": host.format(port=port), "Content-Type": "application/json"}
    status, body = await raw_post(gateway, "/v1/chat/completions", headers)
    assert status == 403 and "not this gateway" in body["error"]["message"]  # type: ignore[index]
    async with aiohttp.ClientSession() as client, client.get(
            gateway.url + "/v1/taskroute/stats", headers=headers) as resp:
        assert resp.status == 403                               # reads too: rebinding gets none


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
async def test_this_machines_names_with_the_port_are_served(
    gateway: RunningGateway, name: str
) -> None:
    port = gateway.url.rsplit(":", 1)[1]
    status, _ = await raw_post(gateway, "/v1/chat/completions",
                               {"Host": f"{name}:{port}", "Content-Type": "application/json"})
    assert status == 200


async def test_insecure_no_auth_turns_the_host_check_off_but_not_the_json_one(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(insecure_no_auth=True))
    status, _ = await raw_post(gw, "/v1/chat/completions",
                               {"Host": "gateway.internal", "Content-Type": "application/json"})
    assert status == 200
    status, _ = await raw_post(gw, "/v1/chat/completions", {"Content-Type": "text/plain"})
    assert status == 415


def test_serve_refuses_another_address_without_keys_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("TASKROUTE_API_KEYS", "TASKROUTE_READ_KEYS", "TASKROUTE_ADMIN_KEYS",
                     "TASKROUTE_KEYS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "log.db")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refusing to serve 0.0.0.0 with no gateway keys" in err
    assert "--insecure-no-auth" in err


def test_insecure_no_auth_or_a_key_lets_serve_bind_elsewhere(tmp_path: Path) -> None:
    args = argparse.Namespace(host="192.0.2.7", insecure_no_auth=False)
    with pytest.raises(CallerError):
        access_settings(GatewaySettings(), args, tmp_path / "log.db")
    args.insecure_no_auth = True
    assert access_settings(GatewaySettings(), args, tmp_path / "log.db").insecure_no_auth
    args.insecure_no_auth = False
    from taskroute.exceptions import Secret

    keyed = access_settings(GatewaySettings(api_keys=(Secret("k"),)), args, tmp_path / "log.db")
    assert keyed.key_salt is not None and (tmp_path / "log.db.key-salt").exists()
    assert [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost",
                                     "0.0.0.0", "10.0.0.1", "example.com")] == [
        True, True, True, True, True, False, False, False]
