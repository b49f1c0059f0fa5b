"""The guard of a gateway with no keys: only this machine's own programs may drive it.

Bound to loopback, such a gateway can still be reached by a web page in a local browser: by a
form or a plain `fetch` (a "simple request", sent without asking, with a text or form body or
none), or through DNS rebinding (a name the page controls, re-pointed at 127.0.0.1). So a POST
must say it is JSON — a page can send that only after a CORS preflight this gateway never
grants — and the `Host` must be this machine by name with the port it is served on.
"""

from __future__ import annotations

from aiohttp import web

from taskroute.exceptions import Forbidden, UnsupportedMediaType

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def check(request: web.Request, *, check_host: bool = True) -> None:
    if check_host:
        check_host_header(request)
    if request.method == "POST":
        check_json_body(request)


def check_host_header(request: web.Request) -> None:
    host = request.headers.get("Host", "").strip().lower()
    name, port = _split(host)
    local_port = _local_port(request)
    # the name is what defeats DNS rebinding; a port, when given, must be this one (a browser
    # always sends it off port 80; a client behind a port forward may leave it out)
    port_ok = port is None or local_port is None or port == local_port
    if name not in LOCAL_NAMES or not port_ok:
        shown = host.encode("ascii", "replace").decode()[:100]
        raise Forbidden(
            f"Host {shown!r} is not this gateway: with no keys it answers only localhost, "
            "127.0.0.1 or [::1] with its port (configure keys to serve other names)")


def check_json_body(request: web.Request) -> None:
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            "POST bodies are JSON: send 'Content-Type: application/json'"
            + (f", not {media[:60]!r}" if media else ""))


def _split(host: str) -> tuple[str, int | None]:
    """`name:port` (IPv6 in brackets) as (name, port); port None when absent, -1 when bad."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else None
    else:
        name, sep, after = host.partition(":")
        port = after if sep else None
    if port is None:
        return name, None
    return name, int(port) if port.isdigit() else -1


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None
