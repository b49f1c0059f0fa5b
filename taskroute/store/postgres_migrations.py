"""The PostgreSQL request log's schema, as named, append-only migrations (as `migrations.py` is
for SQLite; the same tables and columns, so one row tuple serves both backends).

Each migration runs once, in order, in one transaction that holds an advisory lock, so replicas
starting together migrate once; its name is recorded in `schema_migrations`. Never edit or
reorder a migration that has shipped: append a new one.

Where Postgres differs from the SQLite schema, and why:
- `requests.id` (an identity) orders the log for the A/B report's evenly spaced samples, as
  SQLite's rowid does; `feedback.id` keeps feedback in arrival order for the training export.
- `unrolled` lists the requests not yet summed into the hourly rollups. A rowid cursor would
  skip rows whose transaction commits after a later one's (replicas write concurrently, a
  spool replays old rows late): a request enters `unrolled` in the transaction that inserts it
  and leaves it in the one that rolls it up, so each is summed exactly once.
- `"user"` is a reserved word here, so it is always quoted.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

LOCK_ID = 0x7461736B726F7574  # "taskrout": the advisory lock migrations take

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_request_log",
        """
        CREATE TABLE requests (
            id              bigint GENERATED ALWAYS AS IDENTITY,
            request_id      text PRIMARY KEY,
            ts              double precision NOT NULL,  -- unix seconds when it started
            api             text NOT NULL,
            http_status     integer NOT NULL,
            status          text NOT NULL,
            error           text,
            policy          text NOT NULL,
            task            text NOT NULL,
            task_source     text NOT NULL,
            task_confidence double precision,
            tier            text NOT NULL,
            model           text NOT NULL,
            answered_by     text,
            routed          integer NOT NULL,
            escalated       integer NOT NULL,
            race_winner     text,
            estimated_cost_usd double precision NOT NULL,
            cost_usd        double precision NOT NULL,
            input_tokens    bigint NOT NULL,
            output_tokens   bigint NOT NULL,
            latency_s       double precision NOT NULL,
            first_token_s   double precision,
            "user"          text,
            session_id      text,
            api_key_id      text,                       -- a fingerprint, never the key
            decision        text NOT NULL,              -- the decision as JSON
            prompt          text,                       -- only when the policy logs content
            answer          text,
            variant         text,
            race_confidence double precision,
            confidence_source text,
            cached_input_tokens bigint NOT NULL DEFAULT 0,
            cache_write_tokens  bigint NOT NULL DEFAULT 0,
            reasoning_tokens    bigint NOT NULL DEFAULT 0
        );
        CREATE INDEX requests_ts ON requests (ts);
        CREATE INDEX requests_id ON requests (id);
        CREATE INDEX requests_session ON requests (session_id, ts);
        CREATE INDEX requests_user_day ON requests ("user", ts) INCLUDE (cost_usd);
        CREATE INDEX requests_key_day ON requests (api_key_id, ts) INCLUDE (cost_usd);
        CREATE TABLE attempts (
            request_id      text NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
            seq             integer NOT NULL,
            model           text NOT NULL,
            deployment      text NOT NULL,
            role            text NOT NULL,
            status          text NOT NULL,
            started_at      double precision NOT NULL,
            latency_s       double precision NOT NULL,
            first_token_s   double precision,
            input_tokens    bigint NOT NULL,
            output_tokens   bigint NOT NULL,
            cost_usd        double precision NOT NULL,
            verdicts        text NOT NULL,              -- gate verdicts as JSON
            error           text,
            cached_input_tokens bigint NOT NULL DEFAULT 0,
            cache_write_tokens  bigint NOT NULL DEFAULT 0,
            reasoning_tokens    bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (request_id, seq)
        );
        CREATE TABLE unrolled (request_id text PRIMARY KEY);
        CREATE TABLE feedback (
            id          bigint GENERATED ALWAYS AS IDENTITY,
            request_id  text PRIMARY KEY,               -- one feedback per request, never more
            ts          double precision NOT NULL,
            score       double precision,
            corrected   integer NOT NULL,
            text        text,
            api_key_id  text,
            request_ts  double precision NOT NULL, task text NOT NULL, tier text NOT NULL,
            model text NOT NULL, policy text NOT NULL, variant text NOT NULL,
            first_pass  integer NOT NULL, unescalated integer NOT NULL
        );
        CREATE INDEX feedback_window ON feedback (request_ts);
        CREATE TABLE shadow_decisions (
            request_id  text PRIMARY KEY,
            ts          double precision NOT NULL,
            policy      text NOT NULL,
            task        text NOT NULL,
            tier        text NOT NULL,
            model       text NOT NULL,
            decision    text NOT NULL
        );
        CREATE INDEX shadow_decisions_ts ON shadow_decisions (ts);
        CREATE TABLE refused (
            request_id  text PRIMARY KEY,
            ts          double precision NOT NULL,
            api         text NOT NULL,
            path        text NOT NULL,
            http_status integer NOT NULL,
            type        text NOT NULL,
            reason      text NOT NULL,
            model       text,
            task        text,
            "user"      text,
            api_key_id  text,
            prompt      text
        );
        CREATE INDEX refused_ts ON refused (ts);
        CREATE TABLE route_hourly (
            hour bigint NOT NULL, task text NOT NULL, tier text NOT NULL, model text NOT NULL,
            policy text NOT NULL, variant text NOT NULL,
            requests bigint NOT NULL, completed bigint NOT NULL, first_pass bigint NOT NULL,
            escalated bigint NOT NULL, under_served bigint NOT NULL,
            answered_unescalated bigint NOT NULL, cost_usd double precision NOT NULL,
            attempts bigint NOT NULL, errors bigint NOT NULL, input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL, baseline_tokens_in double precision NOT NULL,
            baseline_tokens_out double precision NOT NULL, cached_input_tokens bigint NOT NULL,
            cache_write_tokens bigint NOT NULL, reasoning_tokens bigint NOT NULL,
            first_ts double precision NOT NULL, last_ts double precision NOT NULL,
            PRIMARY KEY (hour, task, tier, model, policy, variant)
        );
        CREATE TABLE route_latency_hourly (
            hour bigint NOT NULL, task text NOT NULL, tier text NOT NULL, model text NOT NULL,
            policy text NOT NULL, variant text NOT NULL,
            kind text NOT NULL,                         -- latency or first_token
            bucket integer NOT NULL, n bigint NOT NULL,
            PRIMARY KEY (hour, task, tier, model, policy, variant, kind, bucket)
        )
        """,
    ),
    (   # a stream rescued mid-answer: where the continuation was spliced on, and by whom
        "0002_stream_rescue",
        """
        ALTER TABLE requests ADD COLUMN seam_chars integer;
        ALTER TABLE requests ADD COLUMN rescued_by text
        """,
    ),
    (
        "0003_stored_responses",
        """
        CREATE TABLE stored_responses (             -- Responses API answers kept with store:
            response_id  text PRIMARY KEY,          -- true, when the policy logs content
            request_id   text NOT NULL,
            ts           double precision NOT NULL,
            api_key_id   text,                      -- only the same key may continue it
            conversation text NOT NULL              -- its turns as chat messages, JSON
        )
        """,
    ),
    (   # an agent run (Router.run) is one request: its steps' routes, and each attempt's step
        "0004_agent_steps",
        """
        ALTER TABLE requests ADD COLUMN steps text;  -- JSON, one entry per step (NULL: not a run)
        ALTER TABLE attempts ADD COLUMN step integer
        """,
    ),
    (   # as SQLite's 0010: totals per minute for the last two days, seeded from the rolled up
        "0005_minute_rollups",
        """
        CREATE TABLE route_minutely (
            minute bigint PRIMARY KEY,
            requests bigint NOT NULL, cost_usd double precision NOT NULL,
            escalated bigint NOT NULL, baseline_tokens_in double precision NOT NULL,
            baseline_tokens_out double precision NOT NULL
        );
        INSERT INTO route_minutely
        SELECT floor(q.ts / 60)::int8, count(*), sum(q.cost_usd), sum(q.escalated),
               sum(q.input_tokens::float8 / greatest(n.n, 1)),
               sum(q.output_tokens::float8 / greatest(n.n, 1))
        FROM requests q
        LEFT JOIN (SELECT request_id, count(*) AS n FROM attempts GROUP BY request_id) n
            ON n.request_id = q.request_id
        WHERE q.ts >= extract(epoch FROM now()) - 172800
          AND NOT EXISTS (SELECT 1 FROM unrolled u WHERE u.request_id = q.request_id)
        GROUP BY 1
        """,
    ),
    (   # a report reads whole hours from the rollups and its window's edge by an index-only
        # scan (every column `postgres_reads` sums), not from the rows and their attempts
        "0006_request_facts",
        """
        ALTER TABLE requests ADD COLUMN n_attempts integer,  -- counted when the row is written,
            ADD COLUMN n_rejected integer,                   -- NULL on rows logged before,
            ADD COLUMN n_errors integer;                     -- which are read from attempts
        CREATE INDEX requests_facts ON requests (ts) INCLUDE (
            task, tier, model, policy, variant, status, escalated, cost_usd, input_tokens,
            output_tokens, latency_s, first_token_s, cached_input_tokens, cache_write_tokens,
            reasoning_tokens, n_attempts, n_rejected, n_errors, request_id
        );
        DROP INDEX requests_ts                               -- requests_facts starts with ts
        """,
    ),
    (   # as SQLite's 0012: the served request's facts beside each shadow decision, read by an
        # index-only scan; decisions logged before (facts NULL) are still joined
        "0007_shadow_facts",
        """
        ALTER TABLE shadow_decisions ADD COLUMN served_task text,
            ADD COLUMN served_tier text, ADD COLUMN served_model text,
            ADD COLUMN served_ok boolean, ADD COLUMN served_cost_usd double precision,
            ADD COLUMN answered text, ADD COLUMN tokens_in bigint, ADD COLUMN tokens_out bigint,
            ADD COLUMN shadow_gate text, ADD COLUMN served_gate text;
        CREATE INDEX shadow_facts ON shadow_decisions (ts) INCLUDE (
            policy, task, tier, model, served_task, served_tier, served_model, served_ok,
            served_cost_usd, answered, tokens_in, tokens_out, shadow_gate, served_gate,
            request_id
        );
        DROP INDEX shadow_decisions_ts                       -- shadow_facts starts with ts
        """,
    ),
    (   # as SQLite's 0013: the task class the feedback names, NULL on rows from before, and
        # the index the misroute counts read (no text in it: a btree row holds ~2.7 kB)
        "0008_feedback_task",
        """
        ALTER TABLE feedback ADD COLUMN named_task text;
        CREATE INDEX feedback_named ON feedback (request_ts) INCLUDE (task, named_task)
            WHERE named_task IS NOT NULL OR text IS NOT NULL
        """,
    ),
    (   # as SQLite's 0014: the circuit breakers' trips, every replica's own
        "0009_breaker_trips",
        """
        CREATE TABLE breaker_trips (
            id          text PRIMARY KEY,               -- unique across replicas
            deployment  text NOT NULL,
            opened_at   double precision NOT NULL,      -- unix seconds
            reason      text NOT NULL,                  -- capped (breaker.REASON_CHARS)
            retry_at    double precision NOT NULL,      -- when the cool-down ends
            closed_at   double precision,               -- a probe succeeded (NULL: not known)
            replica     text NOT NULL                   -- the process whose breaker opened
        );
        CREATE INDEX breaker_trips_opened ON breaker_trips (opened_at);
        CREATE INDEX breaker_trips_deployment ON breaker_trips (deployment, opened_at)
        """,
    ),
)


async def applied(conn: asyncpg.Connection) -> list[str]:
    """Names of the migrations this database has, in the order they ran."""
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "name text PRIMARY KEY, applied_at double precision NOT NULL, "
                       "seq bigint GENERATED ALWAYS AS IDENTITY)")
    return [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY seq")]


async def migrate(conn: asyncpg.Connection, upto: str | None = None) -> list[str]:
    """Apply every migration not yet applied (stopping after `upto` when given); the names
    applied now. A database with a migration this code does not know is refused."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        done = await applied(conn)
        known = [name for name, _ in MIGRATIONS]
        unknown = [name for name in done if name not in known]
        if unknown:
            raise RuntimeError("the log database has migrations this taskroute does not "
                               f"know: {', '.join(unknown)}")
        ran: list[str] = []
        for name, sql in MIGRATIONS:
            if name not in done:
                await conn.execute(sql)  # several statements: the simple protocol runs them
                await conn.execute("INSERT INTO schema_migrations (name, applied_at) "
                                   "VALUES ($1, $2)", name, time.time())
                ran.append(name)
            if name == upto:
                break
    return ran
