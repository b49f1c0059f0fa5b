"""The dashboard's sign-in, for a gateway with keys: a browser cannot send a bearer header.

    GET  /dashboard            without credentials: the sign-in page
    POST /dashboard/signin     {"key": "..."} → 204 and the session cookie
    POST /dashboard/signout    → 204, the cookie cleared

The key travels once, in a JSON body (never a URL, never logged). The cookie holds a session
token, not the key: the key's fingerprint and an expiry, signed with a secret derived from the
server's. It is HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends
it), and it is taken only on GET of the read endpoints — it can never post, call a model or
reload. Sign-in failures count against the wrong-key brake like any other wrong key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import cache
from importlib import resources

import msgspec
from aiohttp import web

from taskroute.exceptions import Forbidden, InvalidRequest
from taskroute.gateway.auth import Authenticator, Identity
from taskroute.gateway.context import GATEWAY, read_json
from taskroute.gateway.local import check_json_body

COOKIE = "taskroute_session"
SESSION_S = 12 * 3600
SIGNIN_FOR = "/dashboard"
_CSP = ("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'")


class Sessions:
    """Signed, expiring session tokens naming a configured key by its fingerprint."""

    def __init__(self, auth: Authenticator, ttl_s: float = SESSION_S) -> None:
        self._auth, self.ttl_s = auth, ttl_s
        self._key = auth.signing_key(b"dashboard-session")

    def issue(self, ident: Identity, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        payload = _b64(msgspec.json.encode({"k": ident.key_id, "exp": expires}))
        return payload + "." + self._sign(payload)

    def verify(self, token: str | None, now: float | None = None) -> Identity | None:
        """The key a token names, while it is valid and that key is still configured."""
        payload, _, signature = (token or "").partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=="))
            key_id, expires = claims["k"], claims["exp"]
        except (ValueError, TypeError, KeyError, msgspec.DecodeError):
            return None
        if not isinstance(expires, int) or expires <= (time.time() if now is None else now):
            return None
        ident = self._auth.by_id(key_id) if isinstance(key_id, str) else None
        return ident if ident is not None and ident.may("read") else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


SESSIONS: web.AppKey[Sessions] = web.AppKey("taskroute_sessions", Sessions)


def install(app: web.Application) -> None:
    """Sign-in and sign-out, when the gateway has keys (without, the dashboard is open)."""
    gateway = app[GATEWAY]
    if gateway.auth.enabled:
        app[SESSIONS] = Sessions(gateway.auth)
        app.router.add_post("/dashboard/signin", post_signin)
        app.router.add_post("/dashboard/signout", post_signout)


def from_cookie(request: web.Request) -> Identity | None:
    """A GET of a read endpoint may be signed in by the session cookie instead of a key."""
    sessions = request.app.get(SESSIONS)
    if sessions is None or request.method not in ("GET", "HEAD"):
        return None
    return sessions.verify(request.cookies.get(COOKIE))


@cache
def _html() -> bytes:
    return resources.files("taskroute.gateway").joinpath("dashboard", "signin.html").read_bytes()


def page() -> web.Response:
    return web.Response(body=_html(), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP})


async def post_signin(request: web.Request) -> web.Response:
    check_json_body(request)
    body = await read_json(request, 16 * 1024)
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest('sign in with {"key": "<a read or admin key>"}', param="key")
    ident = request.app[GATEWAY].auth.identify(key.strip(), request.remote)
    if not ident.may("read"):
        raise Forbidden("this key's scope (user) cannot read the dashboard; "
                        "sign in with a read or admin key")
    sessions = request.app[SESSIONS]
    response = web.Response(status=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(COOKIE, sessions.issue(ident), max_age=int(sessions.ttl_s), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)
    return response


async def post_signout(request: web.Request) -> web.Response:
    response = web.Response(status=204, headers={"Cache-Control": "no-store"})
    response.del_cookie(COOKIE, path="/")
    return response


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
