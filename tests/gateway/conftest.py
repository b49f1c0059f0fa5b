"""A real gateway on 127.0.0.1 in front of the SIMULATED upstream, logging to a fresh SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from taskroute.demo.policy import simulated_policy
from taskroute.experiment import compose
from taskroute.gateway.app import create_app
from taskroute.gateway.server import listening_url, make_runner
from taskroute.gateway.settings import GatewaySettings
from taskroute.policy.loader import load_default_policy
from taskroute.policy.model import Policy
from taskroute.providers.simulated import SimulatedUpstream
from taskroute.router import Router
from taskroute.store.sqlite import SqliteStore


@dataclass
class RunningGateway:
    url: str
    app: web.Application
    runner: web.AppRunner
    db: Path
    upstream: SimulatedUpstream
    store: SqliteStore
    stopped: bool = False

    async def stop(self) -> None:
        """Shut it down as `taskroute serve` does on SIGTERM (its store flushed and closed)."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    async def log_rows(self, sql: str = "SELECT * FROM requests") -> list[sqlite3.Row]:
        await self.store.flush()
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql))

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, str], bytes]:
        if "data" in kwargs:  # a raw body is sent as JSON, as clients do (unless told)
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        async with aiohttp.ClientSession() as client, client.request(
            method, self.url + path, **kwargs
        ) as resp:
            return resp.status, dict(resp.headers), await resp.read()


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(
    simulated_upstream: SimulatedUpstream, tmp_path: Path
) -> AsyncIterator[StartGateway]:
    started: list[RunningGateway] = []

    async def start(
        settings: GatewaySettings | None = None, *,
        edit_policy: Callable[[Policy], Policy] | None = None, db: Path | None = None,
        **router_args: Any,
    ) -> RunningGateway:
        """A gateway logging to a fresh SQLite file, or to `db` (one an earlier gateway of
        this test logged to, say)."""
        policy = simulated_policy(load_default_policy(), simulated_upstream)
        if edit_policy is not None:
            policy = edit_policy(policy)
        router_args.setdefault("classifier", False)
        db = db or tmp_path / f"log{len(started)}.db"
        store = SqliteStore(db)
        router = compose(Router(policy, store=store, **router_args))
        app = create_app(router, settings)
        runner = make_runner(app, shutdown_timeout=5)  # as `taskroute serve` runs it
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        started.append(RunningGateway(listening_url(site, "127.0.0.1"), app, runner, db,
                                      simulated_upstream, store))
        return started[-1]

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> RunningGateway:
    return await start_gateway()
