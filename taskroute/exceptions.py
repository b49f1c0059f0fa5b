"""Every error taskroute raises, in one tree.

    TaskrouteError                      base of everything below
    ├── CallerError                     the caller's mistake: fix the input, retrying won't help
    │   ├── InvalidRequest              a request that is malformed or breaks a rule (HTTP 400)
    │   │   └── ContextWindowExceeded   input + output budget fit no model of the chain (400)
    │   ├── UnknownTask                 a task class the policy does not define (400)
    │   ├── UnknownModel                a model id the policy does not define (404)
    │   ├── PolicyError                 an unusable policy file (file, line, key, expected)
    │   │   └── ConditionError          a rule's condition that does not compile (the loader
    │   │                               adds the file and line)
    │   ├── DataError                   a dataset or file that cannot be read (file, row, field)
    │   ├── ConfigError                 missing settings, such as an API key's variable
    │   │   └── PluginError             an unknown extension name, or a plugin that won't import
    │   ├── AuthenticationFailed        no gateway key, or one it does not know (401)
    │   │   └── WrongKey                    a key given that is none of the gateway's: a guess
    │   ├── Forbidden                   a key without the right, e.g. to reload the policy (403)
    │   ├── NotFound                    no such gateway endpoint (404)
    │   ├── MethodNotAllowed            an endpoint asked with the wrong HTTP method (405)
    │   ├── RequestTimeout              a request head or body that did not arrive in time (408)
    │   ├── RequestTooLarge             a body over the gateway's size limit (413)
    │   ├── HeadersTooLarge             a header line over the gateway's limit (431)
    │   ├── UnsupportedMediaType        a POST body not sent as JSON, without keys (415)
    │   ├── TooManyRequests             the gateway's own per-key limit, with retry-after (429)
    │   │   └── TooManyConnections      over the gateway's cap on open connections (503)
    │   ├── BudgetExhausted             a daily budget is used up until it resets (429)
    │   ├── UnknownRequest              feedback naming a request the log does not hold (404)
    │   └── DuplicateFeedback           a second feedback on one request: never counted (409)
    ├── SharedStateUnavailable          the replicas' shared state (Redis) is down or slow and
    │                                   the policy fails closed (503)
    ├── AgentLimitReached               an agent run (Router.run) stopped at its step, cost or
    │                                   deadline limit before the answer (422; deadline 504)
    └── UpstreamError                   a provider failed us; the chain may escalate past it
        ├── UpstreamTimeout             connect, first-token or total deadline passed (504)
        │   └── StreamStalled           no token for the stall timeout after the answer began
        ├── UpstreamStatus              the provider answered with an error status (502)
        │   ├── RateLimited             429, with the provider's Retry-After when it sent one
        │   └── ContextTooLong          too long for the model's context window: never retried,
        │                               the chain moves on to a larger window
        ├── UpstreamConnectionError     refused, reset or dropped mid-answer (502)
        ├── MalformedResponse           a body or SSE stream we cannot parse (502)
        ├── AnswerCutShort              a live answer cut short of the caller's limit: the next
        │                               model continues it
        └── ChainExhausted              every model in the chain failed; carries every attempt
            ├── ChainTimedOut           ... every one by timing out, or the request's deadline
            │                           passed: an UpstreamTimeout too (504)
            ├── ChainRateLimited        ... every one rate limited: a RateLimited too (429),
            │                           with the soonest Retry-After
            └── ChainTooLong            ... every one refusing it as too long (400)
    StoreUnavailable (TaskrouteError)   the request log's server cannot be reached to read (503)

Messages never contain secrets: API keys live in `Secret` values, which print as '***'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TaskrouteError(Exception):
    """Base class for every error taskroute raises on purpose."""

    status_code: int = 500
    # The `RouteRecord` of the request it ended, when it got as far as a decision (set by the
    # call path, so no one decides a second time to tell what happened). Typed loosely: this
    # module sits below every other, records included.
    record: Any = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CallerError(TaskrouteError):
    """The input was wrong; the same call will fail the same way."""

    status_code = 400


class InvalidRequest(CallerError):
    """A request body that is malformed or breaks a rule of the API."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextWindowExceeded(InvalidRequest):
    """The request's input plus its output budget is more than any model it may go to holds."""


class UnknownTask(CallerError):
    def __init__(self, task: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown task class {task!r}; known: {', '.join(sorted(known))}")
        self.task = task


class UnknownModel(CallerError):
    status_code = 404

    def __init__(self, model: str, known: Sequence[str] = ()) -> None:
        hint = f"; known: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown model {model!r}{hint}")
        self.model = model


class PolicyError(CallerError):
    """A policy file that cannot be used, located to its file, line and key."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        where = file or "<policy>"
        if line is not None:
            where += f":{line}"
        at_key = f" at '{key}'" if key else ""
        super().__init__(f"{where}{at_key}: {problem}")
        self.problem = problem
        self.file = file
        self.line = line
        self.key = key


class DataError(CallerError):
    """A dataset file that cannot be read, located to its row and field."""

    def __init__(
        self, problem: str, *, file: str | None = None, row: int | None = None,
        field: str | None = None,
    ) -> None:
        parts = [file or "<data>"]
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        super().__init__(f"{', '.join(parts)}: {problem}")
        self.file, self.row, self.field = file, row, field


class ConditionError(PolicyError):
    """A rule's condition that cannot compile; the loader adds the file and line."""


class StoreUnavailable(TaskrouteError):
    """The request log's database server (PostgreSQL) cannot be reached for a read; writes are
    spooled locally meanwhile, never refused."""

    status_code = 503


class ConfigError(CallerError):
    """Missing or wrong settings, such as an unset API key variable."""


class AuthenticationFailed(CallerError):
    """The gateway got no API key, or one it does not know."""

    status_code = 401


class WrongKey(AuthenticationFailed):
    """A key was given and no configured key is it: a guess, which the gateway's wrong-key
    brake counts per client address."""


class Forbidden(CallerError):
    """A known key without the right to do this, such as reloading the policy."""

    status_code = 403


class NotFound(CallerError):
    """No such gateway endpoint."""

    status_code = 404


class MethodNotAllowed(CallerError):
    status_code = 405


class RequestTimeout(CallerError):
    """The client was too slow sending its request: the gateway stopped waiting."""

    status_code = 408


class RequestTooLarge(CallerError):
    status_code = 413


class HeadersTooLarge(CallerError):
    status_code = 431


class UnsupportedMediaType(CallerError):
    """A POST whose body is not declared JSON (a keyless gateway refuses it: a browser's
    cross-site "simple request" cannot declare JSON)."""

    status_code = 415


class SharedStateUnavailable(TaskrouteError):
    """Redis, which holds what replicas share (rate limits, budgets), did not answer in time,
    and the policy says `shared state: when down: fail closed`."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AgentLimitReached(TaskrouteError):
    """An agent run stopped at one of its limits before the model answered. `limit` says which
    ("steps", "cost" or "deadline"); `record` holds the run so far (every step, every attempt,
    what it cost), `messages` its transcript (to resume from, or to show)."""

    status_code = 422

    def __init__(self, limit: str, message: str, *, messages: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.limit = limit
        self.messages = list(messages)
        if limit == "deadline":
            self.status_code = 504


class TooManyRequests(CallerError):
    """The gateway's own per-key limit (an upstream 429 is `RateLimited`)."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyConnections(TooManyRequests):
    """Over the cap on open connections: come back in a moment (a load balancer tries another
    instance)."""

    status_code = 503


class BudgetExhausted(CallerError):
    """A daily budget is used up (refused until it resets, `retry_after` seconds from now), or
    taken by requests in flight."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownRequest(CallerError):
    """Feedback names a request the log does not hold."""

    status_code = 404


class DuplicateFeedback(CallerError):
    """The request already has feedback; it is never counted twice."""

    status_code = 409


class PluginError(ConfigError):
    """An extension name nothing registers, or a plugin whose entry point does not import
    (the message names its distribution and entry point, on one line)."""


class UpstreamError(TaskrouteError):
    """A provider failed; the call path may retry or escalate past it."""

    status_code = 502

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class UpstreamTimeout(UpstreamError):
    status_code = 504

    def __init__(self, message: str, *, model: str | None = None, phase: str = "total") -> None:
        super().__init__(message, model=model)
        self.phase = phase  # "connect", "first_token" or "total"


class StreamStalled(UpstreamTimeout):
    """A live stream sent nothing for its stall timeout after its answer had begun."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message, model=model, phase="stall")


class UpstreamStatus(UpstreamError):
    def __init__(
        self, message: str, *, status: int, model: str | None = None, body: Any = None
    ) -> None:
        super().__init__(message, model=model)
        self.status = status
        self.body = body


class RateLimited(UpstreamStatus):
    status_code = 429

    def __init__(
        self, message: str, *, retry_after: float | None = None, model: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, status=429, model=model, body=body)
        self.retry_after = retry_after


class ContextTooLong(UpstreamStatus):
    """The provider refused the request as longer than its model's context window (OpenAI's
    `context_length_exceeded`, Anthropic's "prompt is too long"). A 400 to a caller only when
    no model in the chain can hold it."""

    status_code = 400


class UpstreamConnectionError(UpstreamError):
    pass


class MalformedResponse(UpstreamError):
    pass


class AnswerCutShort(UpstreamError):
    """A live stream ended with `finish_reason: length` short of the caller's limit (or with
    none set): the answer is cut, and the next model continues it (`RouteStream`)."""


class ChainExhausted(UpstreamError):
    """Every model in the chain failed or was rejected; `attempts` holds each one."""

    def __init__(self, message: str, *, attempts: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


class ChainTimedOut(ChainExhausted, UpstreamTimeout):
    """Every model in the chain failed by timing out: the gateway answers 504, not 502."""

    status_code = 504

    def __init__(self, message: str, *, attempts: Sequence[Any] = ()) -> None:
        ChainExhausted.__init__(self, message, attempts=attempts)
        self.phase = "total"


class ChainRateLimited(ChainExhausted, RateLimited):
    """Every model in the chain answered 429: the gateway answers 429 too, with the soonest
    `retry_after` any of them gave (None when none gave one)."""

    status_code = 429

    def __init__(
        self, message: str, *, attempts: Sequence[Any] = (), retry_after: float | None = None,
    ) -> None:
        ChainExhausted.__init__(self, message, attempts=attempts)
        self.status, self.body, self.retry_after = 429, None, retry_after


class ChainTooLong(ChainExhausted):
    """Every model the chain reached refused the request as longer than its context window."""

    status_code = 400


class Secret:
    """A value that never prints: repr and str show '***'. Call `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
