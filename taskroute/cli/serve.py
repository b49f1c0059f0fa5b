"""`taskroute serve`: the OpenAI- and Anthropic-compatible gateway, logging to SQLite or to
PostgreSQL (`--db postgresql://…`, or any registered store's URL), its session history from a
registered backend (`--sessions`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskroute.cli.common import add_policy_option, load_router
from taskroute.exceptions import CallerError
from taskroute.policy.model import Policy

if TYPE_CHECKING:
    from taskroute.session import SessionHistory
    from taskroute.shared.redis_state import RedisState
    from taskroute.shared.sqlite_state import SqliteState

ENV_DB = "TASKROUTE_DB"
ENV_DATABASE_URL = "TASKROUTE_DATABASE_URL"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the gateway: point an OpenAI or Anthropic client's base_url at it",
        description="Serve /v1/chat/completions and /v1/messages, routing every request by the "
        "policy and logging it to SQLite. Bearer keys, if wanted, come from TASKROUTE_API_KEYS "
        "(comma-separated); TASKROUTE_RATE_LIMIT_RPM limits each key. Stops gracefully on "
        "SIGTERM or Ctrl-C: requests in flight finish and the log is flushed.",
    )
    add_policy_option(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    add_log_option(parser)
    parser.add_argument("--store", metavar="URL",
                        help="log through a registered store instead, NAME:LOCATION "
                        "(built in: sqlite:PATH, postgresql://…; see `taskroute plugins`)")
    parser.add_argument("--sessions", metavar="NAME", default="memory",
                        help="the session fallback history, NAME or NAME:LOCATION "
                        "(default memory: per process; see `taskroute plugins`)")
    parser.add_argument("--redis", metavar="URL",
                        help="keep what replicas share in Redis, redis://HOST:PORT/DB: rate "
                        "limits, budgets, session history, open breakers, reloads (default "
                        "$TASKROUTE_REDIS_URL; unset: this process's memory)")
    parser.add_argument("--rate-limit", type=int, metavar="RPM",
                        help="requests per minute per key (default: no limit)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes on the one port (default 1); budgets, rate "
                        "limits, sessions, breakers and reloads hold across them (in Redis "
                        "with --redis, else in a SQLite counters file)")
    # set by `--workers` for its workers
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shared-file", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def add_log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH|URL",
                        help="the request log: a SQLite file, or postgresql://USER@HOST/DB "
                        f"shared by replicas (default ${ENV_DATABASE_URL}, ${ENV_DB} or "
                        f"{default_db()})")


def log_url(db: str | None) -> str:
    """The store URL of `--db` (a path means SQLite), else of the environment, else SQLite's
    default file."""
    if db:
        return db if "://" in db or db.startswith("sqlite:") else f"sqlite:{db}"
    return os.environ.get(ENV_DATABASE_URL) or f"sqlite:{default_db()}"


def default_db() -> Path:
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB])
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "taskroute" / "log.db"


def provider_keys(policy: Policy) -> tuple[list[str], list[str]]:
    """Provider names with their key variable set, and those without (names only, no values)."""
    from taskroute.providers.keys import missing_keys

    unset = missing_keys(policy)
    return ([name for name in policy.providers if name not in unset],
            [f"{name} (set {variable})" for name, variable in unset.items()])


def shared_state(
    args: argparse.Namespace,
) -> tuple[SessionHistory, RedisState | SqliteState | None]:
    """The session history, and the state shared by replicas: Redis when a URL is given, a
    SQLite counters file for `--workers` without one (the history is then its per-process
    fallback)."""
    from taskroute.session import open_history
    from taskroute.shared.redis_conn import ENV_REDIS_URL

    history = open_history(args.sessions)
    url = args.redis or os.environ.get(ENV_REDIS_URL, "").strip()
    if url:
        from taskroute.shared.redis_state import RedisState

        return history, RedisState(url, history=history)
    if args.shared_file:
        from taskroute.shared.sqlite_state import SqliteState

        return history, SqliteState(args.shared_file, history=history)
    return history, None


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CallerError(f"--workers is a number of processes, 1 or more, not {args.workers}")
    if args.workers > 1:
        from taskroute.cli.workers import run_workers

        return run_workers(args)
    from taskroute.experiment import compose
    from taskroute.gateway.app import create_app
    from taskroute.gateway.server import run as run_server
    from taskroute.gateway.server import serve
    from taskroute.gateway.settings import GatewaySettings
    from taskroute.providers.registry import build_providers
    from taskroute.store.registry import open_store
    from taskroute.store.urls import redact

    if args.store and args.db:
        raise CallerError("give --store or --db, not both")
    settings = GatewaySettings.from_env()
    if args.rate_limit:
        settings = GatewaySettings.from_env(rate_limit_rpm=args.rate_limit)
    url = args.store or log_url(args.db)
    db = redact(url.removeprefix("sqlite:"))
    history, shared = shared_state(args)
    router = compose(load_router(args, store=open_store(url), history=history,
                                 spend=shared.fallback.local_spend.tracker
                                 if shared is not None else None, shared=shared))
    build_providers(router.policy)  # a provider's bad options fail now, not on every request
    app = create_app(router, settings)
    have, missing = provider_keys(router.policy)

    def listening(url: str) -> None:
        print(f"taskroute gateway listening on {url}  (OpenAI: {url}/v1, Anthropic: {url})")
        print(f"policy: {router.policy.name}   log: {db}   sessions: {args.sessions}")
        if shared is not None:
            print(f"shared state: {shared.description}, "
                  f"{router.policy.shared_state_down} when it is down")
        print(f"providers with keys: {', '.join(have) or 'none'}")
        if missing:
            print(f"providers without keys: {', '.join(missing)}")
        if settings.api_keys:
            print(f"gateway keys: {len(settings.api_keys)} configured (values not shown)")
        print("Ctrl-C or SIGTERM stops it gracefully.", flush=True)

    run_server(serve(app, args.host, args.port, on_listening=listening,
                     reuse_port=args.reuse_port))
    return 0
