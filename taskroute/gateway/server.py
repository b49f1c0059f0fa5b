"""Running the gateway: listen, serve until SIGTERM or SIGINT, then shut down gracefully —
stop accepting, let in-flight requests finish (up to the settings' timeout), flush the log."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from taskroute.gateway.context import GATEWAY

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
    settings = app[GATEWAY].settings
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=settings.shutdown_timeout_s,
        handler_cancellation=True,  # a client that hangs up cancels its upstream call
        max_line_size=MAX_LINE_SIZE, max_field_size=MAX_FIELD_SIZE,
    )
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
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


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
