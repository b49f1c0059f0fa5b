"""Nothing a client sends is a 500 or a traceback: JSON nested too deep, header bytes that are
not UTF-8, a header over the size limit, malformed framing. Each is the API's own error JSON
with a 4xx, and the server log holds one line for it, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from taskroute.exceptions import Secret
from taskroute.gateway.inputs import MAX_JSON_DEPTH, depth_exceeds
from taskroute.gateway.settings import GatewaySettings
from tests.gateway.conftest import RunningGateway, StartGateway

KEYED = GatewaySettings(api_keys=(Secret("k1"),), extra={"admin_keys": ["adm"]})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_bodies(depth: int) -> list[tuple[str, str]]:
    """A body per POST endpoint with JSON `depth` levels deep inside it, where it would be
    read (messages, tools, the feedback's fields)."""
    return [
        ("/v1/chat/completions", '{"model":"auto","messages":[{"role":"user","content":'
         f'[{{"type":"text","text":"hi","x":{nested(depth - 5)}}}]}}]}}'),
        ("/v1/chat/completions", '{"model":"auto","messages":[{"role":"user","content":'
         f'"hi"}}],"tools":[{{"type":"function","function":{{"name":"f","parameters":'
         f'{{"a":{nested(depth - 5)}}}}}}}]}}'),
        ("/v1/messages", '{"model":"auto","max_tokens":5,"messages":[{"role":"user",'
         f'"content":[{{"type":"text","text":"hi","x":{nested(depth - 5)}}}]}}]}}'),
        ("/v1/messages", '{"model":"auto","max_tokens":5,"messages":[{"role":"user",'
         f'"content":"hi"}}],"tools":[{{"name":"f","input_schema":{nested(depth - 3)}}}]}}'),
        ("/v1/taskroute/feedback", f'{{"request_id":"x","text":{nested(depth - 1)}}}'),
    ]


async def raw_request(gw: RunningGateway, data: bytes) -> tuple[int, dict[str, str], Any]:
    """One request written byte for byte (clients refuse to send what these tests send)."""
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def post_bytes(path: str, body: bytes, *headers: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode() + b"".join(
        h + b"\r\n" for h in headers) + b"\r\n" + body


def assert_api_error(path: str, body: Any, kind: str = "invalid_request_error") -> str:
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == kind
    else:
        assert body["error"]["type"] == kind and "code" in body["error"]
    message: str = body["error"]["message"]
    assert "Traceback" not in message and "internal error" not in message
    return message


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()


@pytest.mark.parametrize(("path", "body"), deep_bodies(1000))
async def test_json_nested_a_thousand_deep_is_a_400_in_the_apis_shape(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture, path: str, body: str,
) -> None:
    gw = await start_gateway()
    status, _, raw = await gw.request("POST", path, data=body.encode(),
                                      headers={"Content-Type": "application/json"})
    assert status == 400, raw
    assert "levels deep" in assert_api_error(path, json.loads(raw))
    assert_no_traceback(caplog)


@pytest.mark.parametrize(("path", "body"), deep_bodies(MAX_JSON_DEPTH + 1))
async def test_one_level_over_the_depth_limit_is_refused(
    gateway: RunningGateway, path: str, body: str,
) -> None:
    status, _, raw = await gateway.request("POST", path, data=body.encode())
    assert status == 400 and b"levels deep" in raw, raw


@pytest.mark.parametrize(("path", "body"), deep_bodies(MAX_JSON_DEPTH)[:4])
async def test_nesting_at_the_depth_limit_is_answered(
    gateway: RunningGateway, path: str, body: str,
) -> None:
    status, _, raw = await gateway.request("POST", path, data=body.encode())
    assert status == 200, raw


def test_depth_is_measured_without_recursion() -> None:
    value: list[Any] = []
    for _ in range(100_000):  # far past the recursion limit
        value = [value]
    assert depth_exceeds(value, 99_999) and not depth_exceeds(value, 100_001)
    assert not depth_exceeds({"a": [1, {"b": []}]}, 4) and depth_exceeds({"a": [{"b": []}]}, 3)
    assert not depth_exceeds("text", 0)


@pytest.mark.parametrize(("path", "header"), [
    ("/v1/chat/completions", b"Authorization: Bearer k1\xff"),
    ("/v1/messages", b"x-api-key: \xffk1"),
    ("/v1/taskroute/reload", b"X-Taskroute-Admin-Key: \xc3\x28"),
    ("/v1/chat/completions", b"X-Taskroute-Task: \xe2\x82"),
])
async def test_a_header_that_is_not_utf8_is_a_400_not_a_500(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture, path: str, header: bytes,
) -> None:
    gw = await start_gateway(KEYED)
    auth = () if header.startswith((b"Auth", b"x-api")) else (b"Authorization: Bearer k1",)
    status, headers, body = await raw_request(gw, post_bytes(path, b"{}", *auth, header))
    assert status == 400, body
    assert "not valid UTF-8" in assert_api_error(path, body)
    assert headers["X-Taskroute-Request-Id"].startswith("req-")
    assert_no_traceback(caplog)


async def test_a_header_in_valid_utf8_beyond_ascii_is_served(gateway: RunningGateway) -> None:
    body = b'{"model":"auto","messages":[{"role":"user","content":"hi"}]}'
    status, _, answer = await raw_request(gateway, post_bytes(
        "/v1/chat/completions", body, "X-Client-Name: café".encode()))
    assert status == 200, answer


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_a_header_over_8_kib_is_a_431_in_the_apis_json(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture, path: str,
) -> None:
    gw = await start_gateway()
    caplog.set_level(logging.INFO)
    status, headers, body = await raw_request(
        gw, post_bytes(path, b"{}", b"Authorization: Bearer sk-secret-" + b"a" * 9000))
    assert status == 431
    assert headers["Content-Type"] == "application/json"
    assert "8190 bytes" in assert_api_error(path, body)
    assert_no_traceback(caplog)
    lines = [r.getMessage() for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(lines) == 1 and "sk-secret" not in lines[0]   # the client's bytes stay out


@pytest.mark.parametrize("request_bytes", [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"BREW /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",   # TLS spoken to a plain-HTTP port
])
async def test_malformed_http_is_a_400_json_without_a_traceback(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture, request_bytes: bytes,
) -> None:
    status, _, body = await raw_request(gateway, request_bytes)
    assert 400 <= status < 500, body
    assert body["error"]["type"] in ("invalid_request_error", "not_found_error")
    assert_no_traceback(caplog)


@pytest.mark.parametrize(("path", "field", "value"), [
    ("/v1/chat/completions", "stop", 1.5), ("/v1/chat/completions", "stop", [1]),
    ("/v1/messages", "stop_sequences", 7), ("/v1/messages", "stop_sequences", [None]),
])
async def test_a_stop_that_is_not_text_is_a_400_not_a_500_or_502(
    gateway: RunningGateway, path: str, field: str, value: Any,
) -> None:
    body = {"model": "auto", "max_tokens": 5, field: value,
            "messages": [{"role": "user", "content": "hi"}]}
    status, _, raw = await gateway.request("POST", path, data=json.dumps(body))
    assert status == 400, raw
    assert "must be a string or a list of strings" in assert_api_error(path, json.loads(raw))
