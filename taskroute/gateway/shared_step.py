"""The gateway's one round trip to state shared by replicas, before routing a chat request:
the caller's rate-limit token, the session's escalations and today's spend per budget scope,
pipelined (`SharedState.prefetch`) and handed to `decide` in the request's context. Only when
the router has shared state (`taskroute serve --redis`); a single process reads its own memory
in `decide` as before."""

from __future__ import annotations

from aiohttp import web

from taskroute.exceptions import TooManyRequests
from taskroute.experiment import Serving
from taskroute.gateway.auth import IDENTITY
from taskroute.gateway.context import Gateway
from taskroute.quality.budgets import limits_of
from taskroute.records import RequestContext
from taskroute.request import ChatRequest
from taskroute.shared.base import Lookup


def rate_key(request: web.Request, key_id: str | None) -> str:
    """Who a rate limit counts: the key, else the client's address."""
    return key_id or request.remote or "anonymous"


async def fetch(
    request: web.Request, gateway: Gateway, router: Serving, chat: ChatRequest,
    context: RequestContext,
) -> RequestContext:
    """`context` with the shared snapshot; `TooManyRequests` when the rate limit refuses."""
    shared = router.shared
    if shared is None:
        return context
    policy = router.policy
    ident = request.get(IDENTITY)
    rpm = (ident.rate_limit_rpm if ident is not None else None) or gateway.settings.rate_limit_rpm
    session = chat.meta("session_id")
    scopes = (tuple(limits_of(policy.budgets, chat.end_user, context.key_id))
              if policy.budgets is not None else ())
    fetched = await shared.prefetch(Lookup(
        rate_key=rate_key(request, context.key_id) if rpm else None, rpm=rpm,
        session=session if isinstance(session, str) and session else None,
        window_s=policy.session_window_s, scopes=scopes,
        fail_closed=policy.shared_state_down == "fail closed"))
    if fetched.retry_after is not None:
        raise TooManyRequests(
            f"rate limit of {rpm} requests per minute reached; retry in "
            f"{fetched.retry_after:.0f}s", retry_after=fetched.retry_after)
    return context.with_(snapshot=fetched.snapshot)
