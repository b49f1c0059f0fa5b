"""The request log's schema, as named, append-only migrations.

Each migration runs once, in order, inside one transaction, and its name is recorded in
`schema_migrations`. Never edit or reorder a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
import time

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_requests_and_attempts",
        """
        CREATE TABLE requests (
            request_id      TEXT PRIMARY KEY,
            ts              REAL NOT NULL,          -- unix seconds when the request started
            api             TEXT NOT NULL,          -- openai, anthropic or library
            http_status     INTEGER NOT NULL,
            status          TEXT NOT NULL,          -- ok or error
            error           TEXT,
            policy          TEXT NOT NULL,
            task            TEXT NOT NULL,
            task_source     TEXT NOT NULL,
            task_confidence REAL,
            tier            TEXT NOT NULL,
            model           TEXT NOT NULL,          -- the decision's first pick
            answered_by     TEXT,
            routed          INTEGER NOT NULL,
            escalated       INTEGER NOT NULL,
            race_winner     TEXT,
            estimated_cost_usd REAL NOT NULL,
            cost_usd        REAL NOT NULL,          -- every attempt, rejected ones included
            input_tokens    INTEGER NOT NULL,
            output_tokens   INTEGER NOT NULL,
            latency_s       REAL NOT NULL,
            first_token_s   REAL,
            user            TEXT,
            session_id      TEXT,
            api_key_id      TEXT,                   -- a fingerprint, never the key
            decision        TEXT NOT NULL,          -- the decision as JSON, with its reasons
            prompt          TEXT,                   -- only when the policy logs content
            answer          TEXT
        );
        CREATE TABLE attempts (
            request_id      TEXT NOT NULL REFERENCES requests(request_id) ON DELETE CASCADE,
            seq             INTEGER NOT NULL,
            model           TEXT NOT NULL,
            deployment      TEXT NOT NULL,
            role            TEXT NOT NULL,
            status          TEXT NOT NULL,
            started_at      REAL NOT NULL,
            latency_s       REAL NOT NULL,
            first_token_s   REAL,
            input_tokens    INTEGER NOT NULL,
            output_tokens   INTEGER NOT NULL,
            cost_usd        REAL NOT NULL,
            verdicts        TEXT NOT NULL,          -- gate verdicts as JSON
            error           TEXT,
            PRIMARY KEY (request_id, seq)
        );
        """,
    ),
    (
        "0002_variant_and_route_indexes",
        """
        ALTER TABLE requests ADD COLUMN variant TEXT;
        CREATE INDEX requests_ts ON requests (ts);
        CREATE INDEX requests_route ON requests (task, tier, answered_by, ts);
        CREATE INDEX requests_session ON requests (session_id, ts);
        """,
    ),
    (
        "0003_route_quality",
        """
        CREATE TABLE feedback (
            request_id  TEXT PRIMARY KEY,           -- one feedback per request, never more
            ts          REAL NOT NULL,
            score       REAL,                       -- 0..1, thumbs up 1, thumbs down 0
            corrected   INTEGER NOT NULL,           -- the user had to fix or redo the answer
            text        TEXT,
            api_key_id  TEXT,
            -- the request's route and outcome, copied when the feedback arrives
            request_ts  REAL NOT NULL, task TEXT NOT NULL, tier TEXT NOT NULL,
            model TEXT NOT NULL, policy TEXT NOT NULL, variant TEXT NOT NULL,
            first_pass  INTEGER NOT NULL, unescalated INTEGER NOT NULL
        );
        CREATE INDEX feedback_window ON feedback (
            request_ts, task, tier, model, policy, variant, score, corrected, first_pass,
            unescalated
        );
        CREATE TABLE shadow_decisions (
            request_id  TEXT PRIMARY KEY,
            ts          REAL NOT NULL,
            policy      TEXT NOT NULL,              -- the candidate policy's name
            task        TEXT NOT NULL,
            tier        TEXT NOT NULL,
            model       TEXT NOT NULL,
            decision    TEXT NOT NULL               -- the candidate's decision as JSON
        );
        CREATE INDEX shadow_decisions_ts ON shadow_decisions (ts);
        CREATE TABLE route_hourly (                 -- requests summed per hour and route
            hour INTEGER NOT NULL, task TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL,
            policy TEXT NOT NULL, variant TEXT NOT NULL,
            requests INTEGER NOT NULL, completed INTEGER NOT NULL, first_pass INTEGER NOT NULL,
            escalated INTEGER NOT NULL, under_served INTEGER NOT NULL,
            answered_unescalated INTEGER NOT NULL, cost_usd REAL NOT NULL,
            attempts INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, baseline_tokens_in REAL NOT NULL,
            baseline_tokens_out REAL NOT NULL, first_ts REAL NOT NULL, last_ts REAL NOT NULL,
            PRIMARY KEY (hour, task, tier, model, policy, variant)
        ) WITHOUT ROWID;
        CREATE TABLE route_latency_hourly (         -- latency histograms, log-scale buckets
            hour INTEGER NOT NULL, task TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL,
            policy TEXT NOT NULL, variant TEXT NOT NULL,
            kind TEXT NOT NULL,                     -- latency or first_token
            bucket INTEGER NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (task, tier, model, policy, variant, kind, bucket, hour)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_state (name TEXT PRIMARY KEY, last_rowid INTEGER NOT NULL);
        CREATE INDEX requests_user_day ON requests (user, ts, cost_usd);
        CREATE INDEX requests_key_day ON requests (api_key_id, ts, cost_usd);
        CREATE INDEX attempts_status ON attempts (request_id, status)
        """,
    ),
    (   # how sure a race's cheap answer was, and what said so (gate:<name>, logprobs, estimate)
        "0004_race_confidence",
        """
        ALTER TABLE requests ADD COLUMN race_confidence REAL;
        ALTER TABLE requests ADD COLUMN confidence_source TEXT
        """,
    ),
    (
        "0005_token_kinds",
        # input_tokens keeps counting every input token and output_tokens every output token;
        # these say how many of them were read from or written to a prompt cache, or reasoning.
        """
        ALTER TABLE requests ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE attempts ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE attempts ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE attempts ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE route_hourly ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE route_hourly ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE route_hourly ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0
        """,
    ),
    (
        "0006_refused_requests",
        """
        CREATE TABLE refused (                      -- refused before routing: no decision
            request_id  TEXT PRIMARY KEY,
            ts          REAL NOT NULL,
            api         TEXT NOT NULL,
            path        TEXT NOT NULL,
            http_status INTEGER NOT NULL,           -- what the client got
            type        TEXT NOT NULL,              -- the error type it got
            reason      TEXT NOT NULL,              -- the message it got
            model       TEXT,                       -- the model it asked for
            task        TEXT,                       -- the class its caller named
            user        TEXT,
            api_key_id  TEXT,                       -- a fingerprint, never the key
            prompt      TEXT                        -- only when the policy logs content
        );
        CREATE INDEX refused_ts ON refused (ts)
        """,
    ),
    (   # a stream rescued mid-answer: where the continuation was spliced on, and by whom
        "0007_stream_rescue",
        """
        ALTER TABLE requests ADD COLUMN seam_chars INTEGER;
        ALTER TABLE requests ADD COLUMN rescued_by TEXT
        """,
    ),
    (
        "0008_stored_responses",
        """
        CREATE TABLE stored_responses (             -- Responses API answers kept with store:
            response_id  TEXT PRIMARY KEY,          -- true, when the policy logs content
            request_id   TEXT NOT NULL,
            ts           REAL NOT NULL,
            api_key_id   TEXT,                      -- only the same key may continue it
            conversation TEXT NOT NULL              -- its turns as chat messages, JSON
        )
        """,
    ),
    (   # an agent run (Router.run) is one request: its steps' routes, and each attempt's step
        "0009_agent_steps",
        """
        ALTER TABLE requests ADD COLUMN steps TEXT;  -- JSON, one entry per step (NULL: not a run)
        ALTER TABLE attempts ADD COLUMN step INTEGER
        """,
    ),
    (   # the dashboard's recent minutes: totals per minute, the last two days only (rollup
        # pruned in `sqlite_rollup.catch_up`); seeded with what is already rolled up
        "0010_minute_rollups",
        """
        CREATE TABLE route_minutely (
            minute INTEGER PRIMARY KEY,             -- unix minutes
            requests INTEGER NOT NULL, cost_usd REAL NOT NULL, escalated INTEGER NOT NULL,
            baseline_tokens_in REAL NOT NULL, baseline_tokens_out REAL NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO route_minutely
        SELECT CAST(q.ts / 60 AS INTEGER), COUNT(*), SUM(q.cost_usd), SUM(q.escalated),
               SUM(q.input_tokens * 1.0 / MAX(COALESCE(n.n, 0), 1)),
               SUM(q.output_tokens * 1.0 / MAX(COALESCE(n.n, 0), 1))
        FROM requests q
        LEFT JOIN (SELECT request_id, COUNT(*) AS n FROM attempts GROUP BY request_id) n
            ON n.request_id = q.request_id
        WHERE q.ts >= CAST(strftime('%s', 'now') AS REAL) - 172800
          AND q.rowid <= COALESCE(
              (SELECT last_rowid FROM rollup_state WHERE name = 'route_hourly'), 0)
        GROUP BY 1
        """,
    ),
    (   # a report reads whole hours from the rollups and its window's edge from one covering
        # index (every column `sqlite_rollup` sums), not from the rows and their attempts
        "0011_request_facts",
        """
        ALTER TABLE requests ADD COLUMN n_attempts INTEGER;  -- counted when the row is written,
        ALTER TABLE requests ADD COLUMN n_rejected INTEGER;  -- NULL on rows logged before,
        ALTER TABLE requests ADD COLUMN n_errors INTEGER;    -- which are read from attempts
        CREATE INDEX requests_facts ON requests (
            ts, task, tier, model, policy, variant, status, escalated, cost_usd, input_tokens,
            output_tokens, latency_s, first_token_s, cached_input_tokens, cache_write_tokens,
            reasoning_tokens, n_attempts, n_rejected, n_errors, request_id
        );
        DROP INDEX requests_ts                              -- requests_facts starts with ts
        """,
    ),
    (   # the shadow report reads the served request's facts beside each shadow decision, from
        # one covering index (`counts.served_facts`), not by joining requests and attempts;
        # decisions logged before (facts NULL) are still joined
        "0012_shadow_facts",
        """
        ALTER TABLE shadow_decisions ADD COLUMN served_task TEXT;
        ALTER TABLE shadow_decisions ADD COLUMN served_tier TEXT;
        ALTER TABLE shadow_decisions ADD COLUMN served_model TEXT;
        ALTER TABLE shadow_decisions ADD COLUMN served_ok INTEGER;
        ALTER TABLE shadow_decisions ADD COLUMN served_cost_usd REAL;
        ALTER TABLE shadow_decisions ADD COLUMN answered TEXT;
        ALTER TABLE shadow_decisions ADD COLUMN tokens_in INTEGER;
        ALTER TABLE shadow_decisions ADD COLUMN tokens_out INTEGER;
        ALTER TABLE shadow_decisions ADD COLUMN shadow_gate TEXT;
        ALTER TABLE shadow_decisions ADD COLUMN served_gate TEXT;
        CREATE INDEX shadow_facts ON shadow_decisions (
            ts, policy, task, tier, model, served_task, served_tier, served_model, served_ok,
            served_cost_usd, answered, tokens_in, tokens_out, shadow_gate, served_gate,
            request_id
        );
        DROP INDEX shadow_decisions_ts                      -- shadow_facts starts with ts
        """,
    ),
    (   # the task class the feedback says the request really was (`Feedback.task`); rows from
        # before keep it NULL and are read by their text (`quality.feedback.feedback_task`).
        # The stats' misroute counts read the feedback that may name one from its own index,
        # not every feedback row of the window.
        "0013_feedback_task",
        """
        ALTER TABLE feedback ADD COLUMN named_task TEXT;
        CREATE INDEX feedback_named ON feedback (request_ts, task, named_task)
            WHERE named_task IS NOT NULL OR text IS NOT NULL
        """,
    ),
    (   # the circuit breakers' trips (`store.trips`), so a restart or a replica started later
        # shows the history: the newest read by time, the per-deployment bound by deployment
        "0014_breaker_trips",
        """
        CREATE TABLE breaker_trips (
            id          TEXT PRIMARY KEY,           -- unique across replicas
            deployment  TEXT NOT NULL,
            opened_at   REAL NOT NULL,              -- unix seconds
            reason      TEXT NOT NULL,              -- capped (breaker.REASON_CHARS)
            retry_at    REAL NOT NULL,              -- when the cool-down ends
            closed_at   REAL,                       -- a probe succeeded (NULL: not known)
            replica     TEXT NOT NULL               -- the process whose breaker opened
        );
        CREATE INDEX breaker_trips_opened ON breaker_trips (opened_at);
        CREATE INDEX breaker_trips_deployment ON breaker_trips (deployment, opened_at)
        """,
    ),
)


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has, in the order they ran."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, upto: str | None = None) -> list[str]:
    """Apply every migration not yet applied (stopping after `upto` when given); return the
    names applied now. A database with a migration this code does not know is refused."""
    done = applied(conn)
    known = [name for name, _ in MIGRATIONS]
    unknown = [name for name in done if name not in known]
    if unknown:
        raise RuntimeError(
            f"the log database has migrations this taskroute does not know: {', '.join(unknown)}"
        )
    ran: list[str] = []
    for name, sql in MIGRATIONS:
        if name not in done and _apply(conn, name, sql):
            ran.append(name)
        if name == upto:
            break
    return ran


def _apply(conn: sqlite3.Connection, name: str, sql: str) -> bool:
    """Run one migration; False if another process applied it first."""
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    conn.execute("BEGIN IMMEDIATE")  # the write lock first: processes opening it together wait
    try:
        if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
            conn.execute("COMMIT")  # another process applied it meanwhile
            return False
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, time.time())
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True
