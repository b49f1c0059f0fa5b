"""`GET /dashboard`: one static page (plain HTML, JS and inline SVG, no build step, nothing from
the network) that reads the same JSON endpoints as everyone else."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web


@cache
def _html() -> bytes:
    return resources.files("taskroute.gateway").joinpath("dashboard", "index.html").read_bytes()


_CSP = ("default-src 'self'; img-src 'self' data:; script-src 'unsafe-inline'; "
        "style-src 'unsafe-inline'")


async def page(request: web.Request) -> web.Response:
    return web.Response(body=_html(), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP})
