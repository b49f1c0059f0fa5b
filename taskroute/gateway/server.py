"""Running the gateway: listen, serve until SIGTERM or SIGINT, then shut down gracefully —
drain (`/readyz` answers 503 at once while requests are still served for `drain_s`, so a load
balancer takes the instance out first), stop accepting, let in-flight requests finish (up to
the settings' timeout), flush the log. A second signal cuts the drain short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from taskroute.gateway.connections import ConnectionLimits, GatewayRunner
from taskroute.gateway.context import GATEWAY

log = logging.getLogger("taskroute.gateway")

# aiohttp's limits on the request line and each header, stated here so they are visible.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 8080, *,
    on_listening: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None, reuse_port: bool = False,
) -> None:
    """Serve `app` until a signal (or `stop`) arrives, then shut down gracefully.
    `reuse_port`: bind with SO_REUSEPORT, beside the other workers on the same port."""
    runner = make_runner(app)
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port, backlog=2048, reuse_port=reuse_port or None)
        await site.start()
        if on_listening is not None:
            on_listening(listening_url(site, host))
        await stop.wait()
        await drain(app, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def make_runner(app: web.Application, **overrides: Any) -> web.AppRunner:
    """The runner `serve` uses: the settings' connection limits, handler cancellation
    (`overrides`: the runner's other arguments, for tests)."""
    settings = app[GATEWAY].settings
    limits = ConnectionLimits(header_timeout_s=settings.header_timeout_s,
                              body_timeout_s=settings.body_timeout_s,
                              max_connections=settings.max_connections)
    options: dict[str, Any] = {
        "access_log": None, "shutdown_timeout": settings.shutdown_timeout_s,
        "handler_cancellation": True,  # a client that hangs up cancels its upstream call
        "keepalive_timeout": settings.keepalive_timeout_s,
        "max_line_size": MAX_LINE_SIZE, "max_field_size": MAX_FIELD_SIZE}
    return GatewayRunner(app, limits, **{**options, **overrides})


async def drain(app: web.Application, stop: asyncio.Event) -> None:
    """Not ready from now on, still serving for the drain period (or until `stop` is set
    again: a second signal)."""
    gateway = app[GATEWAY]
    gateway.ready = False
    period = gateway.settings.drain_s
    log.info("stopping: /readyz answers 503; still serving for %g s, then finishing the "
             "%d requests in flight", period, gateway.in_flight)
    stop.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), period)
    log.info("no longer accepting connections; %d requests in flight", gateway.in_flight)


def configure_logging() -> None:
    """taskroute's own log lines (INFO and up) to stderr, for a gateway run from the CLI."""
    logger = logging.getLogger("taskroute")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def listening_url(site: web.TCPSite, host: str) -> str:
    server = site._server
    if isinstance(server, asyncio.Server) and server.sockets:
        bound = server.sockets[0].getsockname()
        return f"http://{host}:{bound[1]}"
    return site.name


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server's coroutine on uvloop when it is installed (the `gateway` extra), which
    measured faster under load, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
