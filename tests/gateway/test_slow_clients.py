"""Slow and idle clients cannot hold the gateway: a request head or body that does not arrive
in time gets a 408 and its connection closes, idle keep-alive connections close, and over the
cap on open connections a new one gets a 503 — while normal requests go on being served."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from taskroute.gateway.settings import GatewaySettings
from tests.gateway.conftest import RunningGateway, StartGateway

CHAT = b'{"model":"auto","messages":[{"role":"user","content":"hi"}]}'
STALLED = 100  # of each kind: heads that never finish, bodies that never finish


def address(gw: RunningGateway) -> tuple[str, int]:
    host, port = gw.url.removeprefix("http://").split(":")
    return host, int(port)


async def stall(gw: RunningGateway, data: bytes) -> tuple[float, bytes]:
    """Send `data` and nothing more; how long until the server closed, and what it said."""
    reader, writer = await asyncio.open_connection(*address(gw))
    start = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
        said = await asyncio.wait_for(reader.read(), 20)
        return time.monotonic() - start, said
    finally:
        writer.close()


def chat_request(body: bytes = CHAT, *, length: int | None = None) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (len(body) if length is None else length)) + body


def status_and_error(said: bytes) -> tuple[int, str]:
    head, _, body = said.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["message"]


@pytest.mark.timeout(60)
async def test_stalled_heads_and_bodies_are_closed_on_time_while_others_are_served(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(header_timeout_s=1.0, body_timeout_s=1.5))
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1"
    heads = [asyncio.create_task(stall(gw, head))
             for _ in range(STALLED)]
    bodies = [asyncio.create_task(stall(gw, chat_request(CHAT[:10], length=len(CHAT))))
              for _ in range(STALLED)]
    await asyncio.sleep(0.3)
    served_at = time.monotonic()
    status, _, _ = await gw.request("POST", "/v1/chat/completions", data=CHAT)
    served_in = time.monotonic() - served_at
    assert status == 200
    assert not any(t.done() for t in heads + bodies)  # served while they were all held
    head_results = await asyncio.gather(*heads)
    body_results = await asyncio.gather(*bodies)
    for results, limit in ((head_results, 1.0), (body_results, 1.5)):
        waits = sorted(wait for wait, _ in results)
        print(f"{len(results)} stalled ({limit} s limit): closed after {waits[0]:.2f}-"
              f"{waits[-1]:.2f} s (a normal request meanwhile: {served_in * 1000:.0f} ms)")
        assert limit - 0.05 <= waits[0] and waits[-1] < limit + 2.0
        for _, said in results:
            status, message = status_and_error(said)
            assert status == 408 and "did not arrive within" in message


async def test_a_stalled_head_on_a_kept_alive_connection_is_closed(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(header_timeout_s=0.5, keepalive_timeout_s=30))
    reader, writer = await asyncio.open_connection(*address(gw))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b'"ok"}'), 5)
        assert first.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1.0)  # idle past the head timeout: kept alive, not timed out
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        start = time.monotonic()
        said = await asyncio.wait_for(reader.read(), 5)
        assert 0.45 <= time.monotonic() - start < 2.5
        assert status_and_error(said)[0] == 408
    finally:
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(keepalive_timeout_s=0.5))
    reader, writer = await asyncio.open_connection(*address(gw))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b'"ok"}'), 5)
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert time.monotonic() - start < 2.5
    finally:
        writer.close()


async def test_over_the_connection_cap_a_new_connection_gets_a_503(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(max_connections=20))
    idle = [await asyncio.open_connection(*address(gw)) for _ in range(20)]
    try:
        await asyncio.sleep(0.1)
        _, said = await stall(gw, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, message = status_and_error(said)
        assert status == 503 and "cap" in message and b"Retry-After: 1" in said
        for _, writer in idle[:5]:
            writer.close()
        await asyncio.sleep(0.2)
        status, _, _ = await gw.request("GET", "/healthz")
        assert status == 200
    finally:
        for _, writer in idle:
            writer.close()


async def test_a_body_that_arrives_in_time_in_pieces_is_served(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(GatewaySettings(body_timeout_s=1.0))
    reader, writer = await asyncio.open_connection(*address(gw))
    try:
        writer.write(chat_request(b"", length=len(CHAT)))
        for i in range(0, len(CHAT), 20):
            await asyncio.sleep(0.1)
            writer.write(CHAT[i:i + 20])
        said = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert said.startswith(b"HTTP/1.1 200"), said
    finally:
        writer.close()
