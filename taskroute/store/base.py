"""The two Protocols every request log implements: `Store` writes, `LogReader` reads.

`Store` is on the hot path: each routed request is handed to it once, from the gateway and the
library alike, and it must never make the event loop wait on the disk or the network (an
append of a few KB to a file the OS caches, as SQLite's journal does, is the one exception: it
is the durability point, and costs less than handing it to a thread).
`LogReader` is everything else the project asks of the log: the route-quality reports, feedback,
today's spend, the training export and the demo's route table, all async so a backend may use
an async driver or a worker thread, never the loop itself.

The log's semantics (what a metric means, how a report is assembled) live in `taskroute.quality`
as pure functions over plain data: a backend sums the window's requests into `Counts` per fine
group (`quality.metrics`, latencies in its log-scale buckets) and hands them to
`metrics.report`, `abtest.compare` and `timeseries.hourly`, so every backend reports the same
figures. SQLite (`store/sqlite.py`, the embedded default) implements both Protocols. Another
backend — PostgreSQL through asyncpg or psycopg, say — is one new module implementing both, its
own schema migrations included, with a factory `(url) -> store` registered in
`taskroute.plugins.STORES` (or a third party's entry point in `taskroute.stores`), plus its tests
(tests/store/test_reader.py shows what to cover). Nothing outside `store/` opens a database:
tests/store/test_one_door.py fails if it does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from taskroute.decision import Decision
from taskroute.policy.model import Price
from taskroute.quality.budgets import Scope  # the pure quality modules; they never import store
from taskroute.quality.feedback import Feedback, feedback_task
from taskroute.quality.metrics import By
from taskroute.quality.timeseries import Step
from taskroute.records import Api, RouteRecord, Trip


@dataclass(frozen=True, slots=True)
class LogEntry:
    record: RouteRecord
    api: Api = "library"
    http_status: int = 200
    user: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None     # a short fingerprint of the gateway key, never the key
    prompt: str | None = None         # only when the policy's `log content` is true
    answer: str | None = None
    variant: str | None = None        # the A/B variant that served it, when variants exist


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request the gateway refused before it was routed (bad body, no key, unknown model,
    too large, rate limit, budget): no decision, so it is not a routed request and no route
    report counts it; `route_stats` shows refusals apart, by status."""

    request_id: str
    ts: float                         # unix seconds
    api: Api
    path: str
    http_status: int
    type: str                         # the error type the client got (invalid_request_error)
    reason: str                       # the message the client got
    model: str | None = None          # the `model` it asked for, when the body was read
    task: str | None = None           # the class its caller named (X-Taskroute-Task)
    user: str | None = None
    api_key_id: str | None = None     # a fingerprint, never the key
    prompt: str | None = None         # only when the policy's `log content` is true


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    """A logged request with feedback and its prompt: one outcome for the training export."""

    prompt: str
    model: str                        # the model that answered
    score: float | None               # the feedback's score (None: only a correction)
    corrected: bool
    cost_usd: float
    latency_s: float
    task: str
    answer: str | None
    text: str | None = None           # the feedback's text
    named_task: str | None = None     # the feedback's `task`: the class it really was

    @property
    def feedback_task(self) -> str | None:
        """The class the feedback names: its `task`, else a text `task: <class>` (feedback
        from before the field), by `quality.feedback.feedback_task`."""
        return feedback_task(self.named_task, self.text)


@dataclass(frozen=True, slots=True)
class RequestRoute:
    """Where one logged request went and what it took (the demo's route table)."""

    request_id: str
    task: str
    answered_by: str | None
    escalated: bool
    latency_s: float
    first_token_s: float | None
    cost_usd: float
    input_tokens: int
    output_tokens: int


@runtime_checkable
class WatchedWriter(Protocol):
    """A store whose writer reports to the metrics (optional; SQLite and PostgreSQL do)."""

    def queue_depth(self) -> int:
        """Items added and not yet handed to the database."""
        ...

    def on_commit(self, observe: Callable[[float], None]) -> None:
        """Call `observe(seconds)` after each batch is written (on the writer's thread)."""
        ...


class Store(Protocol):
    def add(self, entry: LogEntry) -> None:
        """Queue one entry; never blocks the event loop (writes are batched off it)."""
        ...

    def add_refused(self, refusal: Refusal) -> None:
        """Queue a request refused before routing; never blocks the loop."""
        ...

    def add_shadow(self, request_id: str, decision: Decision,
                   served: RouteRecord | None = None) -> None:
        """Queue what the shadow policy would have chosen for a request; never served, never
        blocks the loop, written with the entries. `served` (the request's finished record)
        lets the store keep the facts the shadow report compares beside the decision."""
        ...

    def acknowledged(self) -> Awaitable[None]:
        """Every entry added so far, durable: the awaitable completes once each has reached the
        operating system in a form this store recovers on its next open, so it outlives this
        process being killed (an OS crash or power loss is a backend's own matter: SQLite's is
        in `store/sqlite.py`). A backend may return its `flush()`; SQLite journals each entry in
        `add` and returns one already done. It should start at once (when called, before it is
        awaited), so a caller can do other work meanwhile; `async def` implements this too.

        The gateway acknowledges a request (sends the last byte of its answer) only after this
        completes; `Router.complete` does not wait (see its docstring)."""
        ...

    def flush(self) -> Awaitable[None]:
        """Everything added so far, written where readers see it: the awaitable completes once
        every entry and shadow decision added before the call is in the log proper (for
        SQLite, committed), durable as `acknowledged` says. Concurrent callers should share
        one write (a group commit), and a call should start that write at once rather than on a
        timer; as with `acknowledged`, a backend may begin when it is called.
        `async def flush` implements this too."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API answer kept for `previous_response_id`: the conversation up to and
    including it, as chat messages (JSON), and the fingerprint of the key that made it."""

    response_id: str
    request_id: str
    conversation: bytes
    api_key_id: str | None = None


@runtime_checkable
class ResponseStore(Store, Protocol):
    """A log that also keeps Responses API answers (SQLite does; a backend may not, and the
    gateway then says `store: true` is not available)."""

    def add_response(self, response: StoredResponse) -> None:
        """Queue it with the log's entries; never blocks the loop (`flush()` writes it)."""
        ...

    async def stored_response(self, response_id: str) -> StoredResponse | None:
        """The stored answer with that id, including one still queued; None if there is
        none."""
        ...


@runtime_checkable
class TripLog(Protocol):
    """A log that also keeps the circuit breakers' trips (SQLite and PostgreSQL do; without
    one, `calling.breaker.TripHistory` keeps them in memory only). The table is bounded: the
    newest `store.trips.KEPT_PER_DEPLOYMENT` per deployment, and `log keep` prunes it too."""

    def add_trip(self, trip: Trip) -> None:
        """Queue the trip as it is now — opened, or since closed — to be written with the
        entries; never blocks the loop. A trip added again (its id) updates its row: a
        closing time once set stays set, whatever order the writes land in."""
        ...

    async def recent_trips(self, limit: int) -> list[Trip]:
        """The newest `limit` trips any replica wrote, newest first, those still queued here
        included. `replica` says whose; `by` is not kept (whose is "here" depends on who
        reads: `TripHistory.load` sets it)."""
        ...


@runtime_checkable
class LogReader(Protocol):
    """Every read of the log, and feedback. Windows end at `now` (default: the current time)
    and reach back `since_s` seconds (None: all time). Reports are plain JSON-ready data."""

    async def route_stats(
        self, *, since_s: float | None = 86400.0, by: By = "route",
        tier_order: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        """The stats report (`taskroute.quality.metrics.report`): one row per `by` group and
        the totals. `tier_order` is the policy's tiers, cheapest first (for over-serving).
        Beside them, `refused` (requests refused before routing, by status) and `misroutes`
        (feedback naming the class a request really was: `quality.feedback.misroutes`)."""
        ...

    async def timeseries(
        self, *, since_s: float | None, baseline_model: str, baseline_price: Price,
        now: float | None = None, step: Step = "hour",
    ) -> dict[str, Any]:
        """Cost and escalations per whole hour (or minute, for the last
        `timeseries.MINUTES_KEPT_S`) against `baseline_model` at `baseline_price`
        (`taskroute.quality.timeseries.series`)."""
        ...

    async def ab_report(
        self, *, since_s: float | None, tier_order: Sequence[str] = (),
        variants: Sequence[str] = (), now: float | None = None,
    ) -> dict[str, Any]:
        """The A/B report (`taskroute.quality.abtest.compare`), `variants` in the policy's
        order, the first the control."""
        ...

    async def shadow_report(
        self, *, since_s: float | None, prices: Mapping[str, Price],
        now: float | None = None,
    ) -> dict[str, Any]:
        """The shadow policies against what was served (`taskroute.quality.shadow.report`),
        the shadow's picks priced by `prices` (model name → price)."""
        ...

    async def add_feedback(self, feedback: Feedback, *, key_id: str | None = None,
                           owner: str | None = None) -> None:
        """Store feedback against its request (a request added to this store before counts,
        even if its write is still queued); with `owner`, only a request logged with that key
        fingerprint counts (another key's is unknown to it). Raises `UnknownRequest` or
        `DuplicateFeedback` (`taskroute.quality.feedback`)."""
        ...

    async def spend_today(self, *, now: float | None = None) -> dict[Scope, float]:
        """USD spent since 00:00 UTC: per ("user", id), per ("key", fingerprint) and in all
        (("day", "")), for `SpendTracker.restore`."""
        ...

    async def catch_up(self) -> int:
        """Bring any precomputed sums up to date (reports are exact either way, this only
        keeps them fast); returns how many requests were added. A read-only log is left."""
        ...

    async def rated_answers(self) -> list[RatedAnswer]:
        """Every request with feedback whose prompt and answering model were logged, in the
        order the feedback came."""
        ...

    async def request_routes(self, request_ids: Sequence[str]) -> list[RequestRoute]:
        """The logged requests among `request_ids`, in no particular order (unknown ids are
        left out)."""
        ...

    async def prune(self, before: float, batch: int) -> int:
        """Delete at most `batch` of the oldest rows from before `before` (unix seconds) —
        requests with their attempts, feedback, refusals, shadow decisions, breaker trips
        (a `TripLog`'s) — in one short
        transaction, so writes go on around it; returns how many went (under `batch`: none
        older is left). Precomputed sums keep what was pruned. `taskroute.store.retention`
        calls it in a loop, in the background."""
        ...
