"""Nothing acknowledged is lost: a loaded `taskroute serve` killed with SIGKILL, again and again on
the same log, has logged every request whose whole answer its caller received — a JSON body read
to its last byte, a stream read to its `data: [DONE]` (OpenAI) or `message_stop` (Anthropic)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from taskroute.demo.policy import simulated_policy
from taskroute.gateway.app import create_app
from taskroute.gateway.server import listening_url
from taskroute.policy.loader import load_default_policy
from taskroute.providers.simulated import ModelProfile, SimulatedUpstream
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore
from tests.calling.support import MemoryStore
from tests.gateway.test_shutdown import start_server

PROMPT = [{"role": "user", "content": "hello, how are you?"}]
ROUNDS = 3
CLIENTS = 32          # eight of each kind below
LOAD_S = 0.8          # of load before each kill
PER_ROUND_CAP = 5000  # requests a round may send at most

# How an answer is read: True once the whole of it is in (False, or an error, when it is cut).
Read = Callable[[aiohttp.ClientResponse], Coroutine[Any, Any, bool]]


async def whole_json(resp: aiohttp.ClientResponse) -> bool:
    json.loads(await resp.read())  # raises when the body was cut short
    return True


async def openai_done(resp: aiohttp.ClientResponse) -> bool:
    async for line in resp.content:
        if line.strip() == b"data: [DONE]":
            return True
    return False


async def anthropic_stop(resp: aiohttp.ClientResponse) -> bool:
    stopping = False
    async for line in resp.content:
        if line.strip() == b"event: message_stop":
            stopping = True
        elif stopping and line.startswith(b"data: "):
            return True
    return False


# (path, body, how its answer is read) for each kind of request.
KINDS: list[tuple[str, dict[str, object], Read]] = [
    ("/v1/chat/completions", {"model": "auto", "messages": PROMPT}, whole_json),
    ("/v1/chat/completions", {"model": "auto", "messages": PROMPT, "stream": True}, openai_done),
    ("/v1/messages", {"model": "auto", "max_tokens": 64, "messages": PROMPT}, whole_json),
    ("/v1/messages", {"model": "auto", "max_tokens": 64, "messages": PROMPT, "stream": True},
     anthropic_stop),
]


async def load_until_killed(url: str, acknowledged: list[str], deadline: float) -> int:
    """Send requests from CLIENTS workers until the server goes (or the deadline or the cap);
    returns how many were sent."""
    sent = itertools.count()

    async def worker(client: aiohttp.ClientSession, kind: int) -> None:
        path, body, read = KINDS[kind % len(KINDS)]
        while time.monotonic() < deadline and next(sent) < PER_ROUND_CAP:
            try:
                async with client.post(url + path, json=body) as resp:
                    if resp.status == 200 and await read(resp):
                        acknowledged.append(resp.headers["X-Taskroute-Request-Id"])
            except (TimeoutError, aiohttp.ClientError, ValueError):
                return  # the server has gone (a cut body does not parse: ValueError)

    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as client:
        await asyncio.gather(*(worker(client, i) for i in range(CLIENTS)))
    return next(sent)


@pytest.mark.timeout(60)
async def test_sigkill_under_load_loses_no_acknowledged_request(tmp_path: Path) -> None:
    acknowledged: list[str] = []
    per_round: list[int] = []
    # Answers take 5 ms, so dozens are always in flight (and finishing) when the kill lands.
    async with SimulatedUpstream(default=ModelProfile(first_token_s=0.005)) as upstream:
        for _ in range(ROUNDS):
            proc, url, db = await start_server(upstream, tmp_path)  # the same log.db each time
            before = len(acknowledged)
            load = asyncio.create_task(
                load_until_killed(url, acknowledged, time.monotonic() + 20))
            await asyncio.sleep(LOAD_S)
            proc.kill()
            await proc.wait()
            await asyncio.wait_for(load, 20)
            per_round.append(len(acknowledged) - before)
    SqliteStore(db).close()  # the log is the database and its journal: opening replays it
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        logged = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
    missing = set(acknowledged) - logged
    print(f"rounds={ROUNDS} acknowledged={per_round} (total {len(acknowledged)}) "
          f"logged={len(logged)} missing={len(missing)}")
    assert all(n > 20 for n in per_round), per_round  # each kill landed under load
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged requests not logged"


class HeldStore(MemoryStore):
    """A store whose writes finish only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def acknowledged(self) -> None:
        await self.release.wait()


async def held_gateway(upstream: SimulatedUpstream, store: HeldStore) -> tuple[str, web.AppRunner]:
    policy = simulated_policy(load_default_policy(), upstream)
    runner = web.AppRunner(create_app(Router(policy, store=store, classifier=False)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return listening_url(site, "127.0.0.1"), runner


@pytest.mark.parametrize("kind", range(len(KINDS)))
async def test_the_last_byte_waits_for_the_log(
    simulated_upstream: SimulatedUpstream, kind: int
) -> None:
    path, body, read = KINDS[kind]
    store = HeldStore()
    url, runner = await held_gateway(simulated_upstream, store)
    try:
        async with aiohttp.ClientSession() as client, client.post(url + path, json=body) as resp:
            assert resp.status == 200
            answer = asyncio.create_task(read(resp))
            await asyncio.sleep(0.3)
            assert len(store.entries) == 1  # answered and logged, but not yet written:
            assert not answer.done()        # the caller has not had the whole answer
            assert resp.content.total_bytes > 0  # what goes before the last piece is out
            store.release.set()
            assert await asyncio.wait_for(answer, 5)
    finally:
        store.release.set()  # else closing the gateway would wait on it
        await runner.cleanup()
