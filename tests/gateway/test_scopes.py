"""Who may do what: admin keys everything, read keys the stats, A/B report, dashboard and
metrics, user keys model calls and feedback on their own requests; per-key limits; wrong keys
braked per client address; every key compared, always; fingerprints keyed with a secret."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest

from taskroute.exceptions import AuthenticationFailed, Secret, TooManyRequests
from taskroute.gateway.app import create_app
from taskroute.gateway.auth import ROUTE_NEEDS, Authenticator, GuessBrake
from taskroute.gateway.keys import ApiKey, stored_salt
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.loader import load_default_policy
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore
from tests.gateway.conftest import RunningGateway, StartGateway

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
KEYS = (ApiKey(Secret("sk-admin"), "admin"), ApiKey(Secret("sk-read"), "read"),
        ApiKey(Secret("sk-alice"), "user", "alice"), ApiKey(Secret("sk-bob"), "user", "bob"))
SETTINGS = GatewaySettings(keys=KEYS, key_salt=Secret("s" * 64))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def chat(gw: RunningGateway, key: str) -> tuple[int, dict[str, str], bytes]:
    return await gw.request("POST", "/v1/chat/completions", json=HELLO, headers=bearer(key))


async def statuses(gw: RunningGateway, key: str) -> dict[str, int]:
    got = {"chat": (await chat(gw, key))[0]}
    for path in ("/v1/models", "/v1/taskroute/stats", "/v1/taskroute/ab", "/metrics",
                 "/dashboard"):
        got[path] = (await gw.request("GET", path, headers=bearer(key)))[0]
    got["reload"] = (await gw.request("POST", "/v1/taskroute/reload", json={},
                                      headers=bearer(key)))[0]
    return got


async def test_every_endpoint_says_what_it_needs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    try:
        app = create_app(Router(load_default_policy(), classifier=False, store=store), SETTINGS)
        paths = {r.canonical for r in app.router.resources()}
    finally:
        await store.aclose()
    assert "/dashboard/signin" in paths
    assert paths - set(ROUTE_NEEDS) == set()   # a new endpoint must be given its scope


async def test_each_scope_reaches_its_endpoints_only(start_gateway: StartGateway) -> None:
    gw = await start_gateway(SETTINGS)
    user, read, got = [await statuses(gw, k) for k in ("sk-alice", "sk-read", "sk-admin")]
    assert user == {"chat": 200, "/v1/models": 200, "/v1/taskroute/stats": 403,
                          "/v1/taskroute/ab": 403, "/metrics": 403, "/dashboard": 403,
                          "reload": 403}
    assert read == {"chat": 403, "/v1/models": 200, "/v1/taskroute/stats": 200,
                          "/v1/taskroute/ab": 200, "/metrics": 200, "/dashboard": 200,
                          "reload": 403}
    # the policy was not loaded from a file: past the key check, reload says so (400)
    assert got == {"chat": 200, "/v1/models": 200, "/v1/taskroute/stats": 200,
                   "/v1/taskroute/ab": 200, "/metrics": 200, "/dashboard": 200, "reload": 400}
    _, _, body = await gw.request("GET", "/metrics", headers=bearer("sk-alice"))
    assert json.loads(body)["error"]["type"] == "permission_error"


async def test_a_user_key_gives_feedback_on_its_own_requests_only(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(SETTINGS)
    _, headers, _ = await chat(gw, "sk-alice")
    alices = headers["X-Taskroute-Request-Id"]

    async def feedback(key: str, request_id: str) -> int:
        return (await gw.request("POST", "/v1/taskroute/feedback", headers=bearer(key),
                                 json={"request_id": request_id, "thumbs": "down"}))[0]

    assert await feedback("sk-bob", alices) == 404        # not bob's: as if unknown
    assert await feedback("sk-read", alices) == 403       # read keys do not write
    assert await feedback("sk-alice", alices) == 201      # bob did not use up alice's one
    assert await feedback("sk-alice", alices) == 409
    _, headers, _ = await chat(gw, "sk-bob")
    assert await feedback("sk-admin", headers["X-Taskroute-Request-Id"]) == 201  # admin: any


async def test_a_keys_own_rate_limit_applies_to_it_alone(start_gateway: StartGateway) -> None:
    keys = (ApiKey(Secret("sk-slow"), "user", "slow", rate_limit_rpm=2), ApiKey(Secret("sk-any")))
    gw = await start_gateway(GatewaySettings(keys=keys, rate_limit_rpm=1000))
    assert [(await chat(gw, "sk-slow"))[0] for _ in range(3)] == [200, 200, 429]
    assert [(await chat(gw, "sk-any"))[0] for _ in range(3)] == [200, 200, 200]


async def test_wrong_keys_are_braked_per_address_and_logged_as_refusals(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(keys=KEYS, wrong_key_limit=3))
    got = [(await chat(gw, f"sk-guess-{i}"))[0] for i in range(5)]
    assert got == [401, 401, 401, 429, 429]
    status, headers, body = await chat(gw, "sk-alice")    # the right key tells nothing now
    assert status == 429 and int(headers["Retry-After"]) >= 1
    error = json.loads(body)["error"]
    assert error["type"] == "rate_limit_error" and "wrong API keys" in error["message"]
    assert (await gw.request("GET", "/healthz"))[0] == 200
    refused = await gw.log_rows("SELECT http_status FROM refused")
    assert sorted(r["http_status"] for r in refused) == [401, 401, 401, 429, 429, 429]


async def test_the_brake_lifts_when_its_window_has_passed() -> None:
    brake = GuessBrake(limit=2, window_s=10)
    brake.failed("1.2.3.4", now=0)
    brake.failed("1.2.3.4", now=1)
    with pytest.raises(TooManyRequests) as caught:
        brake.check("1.2.3.4", now=5)
    assert caught.value.retry_after == 5
    brake.check("5.6.7.8", now=5)                          # another address is not braked
    brake.check("1.2.3.4", now=10)


def test_every_configured_key_is_compared_even_after_a_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authn = Authenticator([ApiKey(Secret(f"sk-{i}")) for i in range(5)], Secret("x" * 64))
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert authn.identify("sk-0").key_id == authn.fingerprint("sk-0")   # the first matches
    assert len(calls) == 5 and {len(a) for a, _ in calls} == {32}       # fixed length, all
    with pytest.raises(AuthenticationFailed):
        authn.identify("sk-\udcff")                       # a non-UTF-8 header byte: a wrong key
    assert len(calls) == 10


def test_gateways_starting_together_all_read_one_whole_salt(tmp_path: Path) -> None:
    # `serve --workers` starts its workers at once: none may read the file half-written.
    for round_ in range(20):
        log = tmp_path / f"log{round_}.db"
        start = threading.Barrier(8)

        def make(log: Path = log, start: threading.Barrier = start) -> str:
            start.wait()
            return stored_salt(log).reveal()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            salts = list(pool.map(lambda _: make(), range(8)))
        assert len(set(salts)) == 1 and len(salts[0]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"log{i}.db.key-salt" for i in range(20))  # no temporary file left behind


def test_fingerprints_are_keyed_and_stay_across_restarts(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    salt = stored_salt(log)
    assert (tmp_path / "log.db.key-salt").stat().st_mode & 0o077 == 0   # owner only
    first = Authenticator([ApiKey(Secret("sk-a"))], salt).fingerprint("sk-a")
    again = Authenticator([ApiKey(Secret("sk-a"))], stored_salt(log)).fingerprint("sk-a")
    other = Authenticator([ApiKey(Secret("sk-a"))], Secret("y" * 64)).fingerprint("sk-a")
    assert first == again and first != other and first.startswith("key-")
    assert first != "key-" + hashlib.sha256(b"sk-a").hexdigest()[:12]   # not checkable offline
