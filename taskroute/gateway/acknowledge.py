"""What the gateway calls acknowledging a request, and how the log is made to have it first.

A request is *acknowledged* once its caller has received the whole of its answer: the last byte
of a JSON body, or a stream's final event — `data: [DONE]` (OpenAI), `message_stop` (Anthropic),
or the error event of a stream that failed after its first byte — and the end of the body. The
gateway sends that last piece only after the request's log row is durable
(`Store.acknowledged`), so it survives the gateway being killed — SIGKILL, a crash, the OOM
killer; without an fsync, not the machine losing power. For SQLite that is already so when the
entry is added: `add` appends its rows to the store's journal with one `write()`
(`store/sqlite_journal.py`), and the commit to SQLite follows off the critical path. A caller
holding a whole answer can count on its row; a caller whose answer was cut off may or may not
find one.

A store whose `acknowledged` is its `flush` makes this a group commit: requests finishing
together wait on one write, started as soon as the first of them asks, while the gateway builds
or sends what goes ahead of the last piece. Errors answered with a status (4xx, 5xx) are logged
without the wait. `Router.complete`, the library's path, does not wait either: it returns once
the entry is added; `await router.store.acknowledged()` after it gives the same guarantee
(`flush()`, that readers see it too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping

from aiohttp import web

from taskroute.experiment import Serving


def log_written(router: Serving) -> asyncio.Future[None]:
    """Done once everything `router` has logged so far (the request that just finished
    included) is durable; await it before the last byte of that request's answer goes out. (A
    future, started now even for a store whose `acknowledged` is a coroutine, and harmless if
    the caller hangs up and it is never awaited.)"""
    if router.store is not None:
        return asyncio.ensure_future(router.store.acknowledged())
    nothing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    nothing.set_result(None)
    return nothing


class _HeldResponse(web.StreamResponse):
    """Sends its headers with the first part of the body, in one packet (as `web.Response`)."""

    _send_headers_immediately = False


async def reply(
    request: web.Request, body: bytes, headers: Mapping[str, str], written: Awaitable[None],
    content_type: str = "application/json",
) -> web.StreamResponse:
    """A whole answer whose last byte waits for `written` (`log_written`): the headers and the
    rest of the body go out at once, while the commit runs."""
    response = _HeldResponse(headers=headers)
    response.content_type = content_type
    response.content_length = len(body)
    try:
        await response.prepare(request)
        if _done(written):  # durable already (SQLite's journal): all of it in one write
            await written
            await response.write_eof(body)
            return response
        await response.write(body[:-1])
        await written
        await response.write_eof(body[-1:])
    except ConnectionResetError:
        pass  # the caller hung up first: not acknowledged (the row is written all the same)
    return response


def _done(written: Awaitable[None]) -> bool:
    """Has the log row already reached the OS? (Each write to a socket is a system call, the
    costliest step on a loopback hop: the last byte then needs no write of its own.)"""
    return isinstance(written, asyncio.Future) and written.done()
