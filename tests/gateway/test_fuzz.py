"""Property-based requests against the gateway's own /openapi.json (schemathesis), and
hypothesis-built odd bodies and headers against every POST endpoint: no 5xx and no hang, on
every endpoint. /openapi.json is checked to describe every route the app serves. Bounded: a
fixed number of examples per operation, each call with a timeout."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from taskroute.demo.policy import simulated_policy  # noqa: E402
from taskroute.gateway.app import create_app  # noqa: E402
from taskroute.gateway.server import listening_url, make_runner  # noqa: E402
from taskroute.gateway.settings import GatewaySettings  # noqa: E402
from taskroute.policy.loader import load_default_policy  # noqa: E402
from taskroute.providers.simulated import SimulatedUpstream  # noqa: E402
from taskroute.router import Router  # noqa: E402
from taskroute.store.sqlite import SqliteStore  # noqa: E402

ADMIN_KEY = "fuzz-admin"
# Every fuzzed request carries the admin key, so it reaches the handlers (not only the auth
# check in front of them); a fuzzed Authorization header replaces it.
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def serve_in_thread(settings: GatewaySettings, db: Path) -> Iterator[str]:
    """The gateway in front of the simulated upstream, logging to `db` (so the quality
    endpoints are served), on a loop of its own (schemathesis calls are synchronous)."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> None:
        upstream = SimulatedUpstream()
        await upstream.start()
        router = Router(simulated_policy(load_default_policy(), upstream), classifier=False,
                        store=SqliteStore(db))
        runner = make_runner(create_app(router, settings), shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box.update(url=listening_url(site, "127.0.0.1"), runner=runner, upstream=upstream)

    def run() -> None:
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(15)
    yield str(box["url"])

    async def stop() -> None:
        runner = box["runner"]
        upstream = box["upstream"]
        assert isinstance(runner, web.AppRunner) and isinstance(upstream, SimulatedUpstream)
        await runner.cleanup()
        await upstream.stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(15)
    loop.close()


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_in_thread(
        # fuzzed keys are wrong keys: the brake on guessing them would stop the fuzzing
        GatewaySettings(max_body_bytes=64 * 1024, extra={"admin_keys": [ADMIN_KEY]},
                        wrong_key_limit=1_000_000),
        tmp_path_factory.mktemp("fuzz") / "log.db")


@pytest.mark.timeout(240)
def test_no_server_errors_and_no_hangs(gateway_url: str) -> None:
    """Every operation of /openapi.json, fuzzed with generated bodies, headers and paths."""
    from hypothesis import given

    api = schemathesis.openapi.from_url(gateway_url + "/openapi.json", headers=AUTH)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 6  # schemathesis leaves out the document itself
    failures: list[str] = []
    # valid requests everywhere, and deliberately invalid bodies where there is a body
    runs = [(o, schemathesis.GenerationMode.POSITIVE) for o in operations] + [
        (o, schemathesis.GenerationMode.NEGATIVE) for o in operations
        if o.method.upper() == "POST"]
    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(base_url=gateway_url, timeout=10,  # raises on a hang
                                 headers=AUTH)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} "
                                f"{response.text[:200]} for {case.body!r:.200}")

        try:
            check()
        except Unsatisfiable:  # nothing invalid to send: a POST without a body (sign-out)
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation
    assert not failures, "\n".join(failures[:10])


def test_openapi_describes_every_route_the_app_serves(gateway_url: str, tmp_path: Path) -> None:
    from aiohttp import web

    document = json.loads(_call(gateway_url, "GET", "/openapi.json")[1])
    app = create_app(Router(load_default_policy(), classifier=False,
                            store=SqliteStore(tmp_path / "log.db")),
                     GatewaySettings(extra={"admin_keys": [ADMIN_KEY]}))
    served = {(route.method.lower(), route.resource.canonical)
              for route in app.router.routes()
              if route.method != "HEAD" and isinstance(route.resource, web.Resource)}
    described = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served <= described, served - described
    assert {"/metrics", "/healthz", "/readyz", "/dashboard", "/v1/taskroute/feedback",
            "/v1/taskroute/reload", "/v1/taskroute/stats"} <= set(document["paths"])


# -- odd bodies and headers, hypothesis-built, against every POST endpoint -----------------

def _nested(depth: int) -> str:
    """JSON `depth` levels deep, as text (json.dumps itself recurses)."""
    return '{"k":[' * (depth // 2) + "1" + "]}" * (depth // 2)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["", "\u0000", "\ud800", "9" * 400, "\udfff\ud800"]),
)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
_FIELDS = ["model", "messages", "max_tokens", "tools", "tool_choice", "stream", "metadata",
           "temperature", "system", "response_format", "request_id", "score", "thumbs", "text",
           "user", "stop", "n", "logprobs"]


@st.composite
def odd_body(draw: st.DrawFn) -> bytes:
    """A body a careless or hostile client might send: real field names with values of any
    type, nesting deep or very deep, huge numbers, escaped lone surrogates, or not JSON."""
    kind = draw(st.sampled_from(["fields", "deep", "any", "bytes", "surrogate", "numbers"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "surrogate":  # a lone surrogate, written as JSON writes it
        return b'{"model":"auto","messages":[{"role":"user","content":"\\ud83d x"}]}'.replace(
            b"\\\\", b"\\")
    if kind == "numbers":
        big = draw(st.sampled_from(["1e999", "-1e999", "1" + "0" * 5000, "1e-999", "-0"]))
        field = draw(st.sampled_from(["max_tokens", "temperature", "n", "score"]))
        return (f'{{"model":"auto","{field}":{big},"messages":[{{"role":"user",'
                f'"content":"hi"}}]}}').encode()
    if kind == "deep":
        depth = draw(st.sampled_from([30, 63, 64, 65, 200, 5000]))
        field = draw(st.sampled_from(["messages", "tools", "metadata", "text"]))
        deep: dict[str, Any] = {"model": "auto", "field": "DEEP",
                                "messages": [{"role": "user", "content": "hi"}]}
        deep[field] = deep.pop("field")
        return json.dumps(deep).replace('"DEEP"', _nested(depth)).encode()
    if kind == "any":
        return json.dumps(draw(_JSON)).encode()
    body: dict[str, Any] = {"model": "auto", "max_tokens": 16,
                            "messages": [{"role": "user", "content": "hello"}]}
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4)):
        body[name] = draw(_JSON)
    return json.dumps(body).encode()


_ODD_HEADER = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.just(b"a" * 9000), st.just(b"\xff\xfe"), st.just(b"Bearer \xc3\x28"))


def _call(url: str, method: str, path: str, body: bytes | None = None,
          headers: dict[str, bytes] | None = None) -> tuple[int, bytes, str]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)  # raises on a hang
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Content-Type": b"application/json",
                "Authorization": AUTH["Authorization"].encode(), **(headers or {})}
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        conn.close()


def _post_paths(url: str) -> list[str]:
    document = json.loads(_call(url, "GET", "/openapi.json")[1])
    return sorted(path for path, ops in document["paths"].items() if "post" in ops)


@pytest.mark.timeout(120)
def test_odd_bodies_and_headers_never_get_a_5xx(gateway_url: str) -> None:
    paths = _post_paths(gateway_url)
    assert {"/v1/chat/completions", "/v1/messages", "/v1/taskroute/feedback",
            "/v1/taskroute/reload"} <= set(paths)
    counts: dict[str, int] = {}
    failures: list[str] = []
    for path in paths:
        _fuzz_post(gateway_url, path, counts, failures)
    print(f"odd bodies: {counts} ({sum(counts.values())} requests, {len(failures)} 5xx)")
    assert not failures, "\n".join(failures[:10])


def _fuzz_post(url: str, path: str, counts: dict[str, int], failures: list[str]) -> None:
    @given(body=odd_body(), header=st.sampled_from(
        ["Authorization", "x-api-key", "X-Taskroute-Admin-Key", "X-Taskroute-Task",
         "X-Taskroute-Explain", "anthropic-beta", "X-Taskroute-Request-Id"]),
        value=_ODD_HEADER, with_header=st.booleans())
    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(body: bytes, header: str, value: bytes, with_header: bool) -> None:
        headers = {header: value} if with_header else {}
        if path.endswith("/reload") and not with_header:
            headers["X-Taskroute-Admin-Key"] = ADMIN_KEY.encode()
        status, answer, kind = _call(url, "POST", path, body, headers)
        counts[path] = counts.get(path, 0) + 1
        if status >= 500:
            failures.append(f"POST {path}: {status} {answer[:200]!r} for {body[:200]!r} "
                            f"with {header}: {value[:40]!r}")
        elif kind.startswith("text/event-stream"):  # a valid streamed request: its answer
            events = [line for line in answer.split(b"\n") if line.startswith(b"data: ")]
            assert events, answer[:200]
            for event in events:      # each event's data is JSON (OpenAI's end is [DONE])
                if event != b"data: [DONE]":
                    json.loads(event.removeprefix(b"data: "))
        elif status != 204:  # 204: signed in or out, no body
            json.loads(answer)  # the API's error JSON (or an answer), never plain text

    check()
