"""`taskroute serve`: the OpenAI- and Anthropic-compatible gateway, logging to SQLite or to
PostgreSQL (`--db postgresql://…`, or any registered store's URL), its session history from a
registered backend (`--sessions`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskroute.cli.common import add_policy_option, load_router
from taskroute.exceptions import CallerError
from taskroute.policy.model import Policy

if TYPE_CHECKING:
    from taskroute.gateway.settings import GatewaySettings
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
        "(comma-separated), read and admin keys from TASKROUTE_READ_KEYS and TASKROUTE_ADMIN_KEYS, "
        "or all from a keys file; TASKROUTE_RATE_LIMIT_RPM limits each key. Without keys it "
        "serves this machine only. Stops gracefully on "
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
    parser.add_argument("--hold-expiry", metavar="WINDOW", default="15m",
                        help="how long a budget hold shared with other replicas or workers may "
                        "stay unsettled before a sweep frees it, e.g. 15m (default; a replica "
                        "killed mid-request never settles its holds)")
    parser.add_argument("--rate-limit", type=int, metavar="RPM",
                        help="requests per minute per key (default: no limit)")
    add_connection_options(parser)
    # -- who may do what (gateway/keys.py) --
    parser.add_argument("--keys-file", metavar="PATH",
                        help="scoped gateway keys, YAML or JSON (default $TASKROUTE_KEYS_FILE)")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="serve an address other than loopback with no keys: anyone who "
                        "can reach it may call models, read the log and post feedback")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes on the one port (default 1); budgets, rate "
                        "limits, sessions, breakers and reloads hold across them (in Redis "
                        "with --redis, else in a SQLite counters file)")
    # set by `--workers` for its workers
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shared-file", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


# -- connection limits and the drain on SIGTERM (defaults in GatewaySettings, env TASKROUTE_*)
_CONNECTION_FLAGS = (  # flag, setting, what it limits
    ("--header-timeout", "header_timeout_s", "seconds a request's head may take (default 10)"),
    ("--body-timeout", "body_timeout_s", "seconds a request's body may take (default 30)"),
    ("--keepalive-timeout", "keepalive_timeout_s",
     "seconds an idle connection stays open (default 75)"),
    ("--drain", "drain_s", "seconds still serving after SIGTERM while /readyz answers 503 "
     "(default 5; 0: none)"),
)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    for flag, dest, text in _CONNECTION_FLAGS:
        parser.add_argument(flag, dest=dest, metavar="S", help=text)
    parser.add_argument("--max-connections", type=int, metavar="N",
                        help="open connections at once; over it, 503 (default 1024)")


def connection_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from taskroute.gateway.settings import seconds

    found: dict[str, Any] = {dest: seconds(raw, flag, allow_zero=dest == "drain_s")
                             for flag, dest, _ in _CONNECTION_FLAGS
                             if (raw := getattr(args, dest, None)) is not None}
    if args.max_connections is not None:
        if args.max_connections < 1:
            raise CallerError("--max-connections must be positive")
        found["max_connections"] = args.max_connections
    return found


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


def access_settings(
    settings: GatewaySettings, args: argparse.Namespace, log_path: Path
) -> GatewaySettings:
    """Keys on: the fingerprint secret (the variable's, else the one kept beside the log). Keys
    off: loopback only, unless the operator says `--insecure-no-auth`."""
    from taskroute.gateway.keys import stored_salt

    if settings.all_keys():
        return settings if settings.key_salt else replace(
            settings, key_salt=stored_salt(log_path))
    if not is_loopback(args.host) and not args.insecure_no_auth:
        raise CallerError(
            f"refusing to serve {args.host} with no gateway keys: set TASKROUTE_API_KEYS "
            "(or --keys-file), or pass --insecure-no-auth to let anyone who reaches it in")
    return replace(settings, insecure_no_auth=args.insecure_no_auth)


def log_file(args: argparse.Namespace) -> Path:
    """The log's file, or where it would be for a store that is no file (the key salt's place)."""
    if args.store and args.store.startswith("sqlite:"):
        return Path(args.store.removeprefix("sqlite:"))
    return Path(args.db) if args.db and "://" not in args.db else default_db()


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def scope_counts(settings: GatewaySettings) -> str:
    counts: dict[str, int] = {}
    for key in settings.all_keys():
        counts[key.scope] = counts.get(key.scope, 0) + 1
    return ", ".join(f"{n} {scope}" for scope, n in sorted(counts.items()))
def shared_state(
    args: argparse.Namespace,
) -> tuple[SessionHistory, RedisState | SqliteState | None]:
    """The session history, and the state shared by replicas: Redis when a URL is given, a
    SQLite counters file for `--workers` without one (the history is then its per-process
    fallback)."""
    from taskroute.quality.window import parse_window
    from taskroute.session import open_history
    from taskroute.shared.redis_conn import ENV_REDIS_URL

    hold_ttl_s = parse_window(args.hold_expiry)
    if hold_ttl_s is None:
        raise CallerError(f"--hold-expiry is a time such as 15m, not {args.hold_expiry!r}")
    history = open_history(args.sessions)
    url = args.redis or os.environ.get(ENV_REDIS_URL, "").strip()
    if url:
        from taskroute.shared.redis_state import RedisState

        return history, RedisState(url, history=history, hold_ttl_s=hold_ttl_s)
    if args.shared_file:
        from taskroute.shared.sqlite_state import SqliteState

        return history, SqliteState(args.shared_file, history=history, hold_ttl_s=hold_ttl_s)
    return history, None


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CallerError(f"--workers is a number of processes, 1 or more, not {args.workers}")
    if args.workers > 1:
        from taskroute.cli.workers import run_workers

        return run_workers(args)
    from taskroute.experiment import compose
    from taskroute.gateway.app import create_app
    from taskroute.gateway.server import configure_logging, serve
    from taskroute.gateway.server import run as run_server
    from taskroute.gateway.settings import GatewaySettings
    from taskroute.providers.registry import build_providers
    from taskroute.store.registry import open_store
    from taskroute.store.urls import redact
    from taskroute.tracing import from_environment

    if args.store and args.db:
        raise CallerError("give --store or --db, not both")
    settings = GatewaySettings.from_env(keys_file=args.keys_file, **connection_overrides(args))
    if args.rate_limit:
        settings = replace(settings, rate_limit_rpm=args.rate_limit)
    url = args.store or log_url(args.db)
    db = redact(url.removeprefix("sqlite:"))
    settings = access_settings(settings, args, log_file(args))
    history, shared = shared_state(args)
    tracing = from_environment(os.environ)  # the OTEL_* variables (taskroute/tracing)
    router = compose(load_router(args, store=open_store(url), history=history,
                                 spend=shared.fallback.local_spend.tracker
                                 if shared is not None else None, shared=shared,
                                 tracing=tracing)).warm()  # not on the first request
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
        if settings.all_keys():
            print(f"gateway keys: {scope_counts(settings)} (values not shown)")
        else:
            print("no gateway keys: serving this machine's own programs only")
        if tracing is not None:
            print("traces: exported over OTLP (OTEL_* environment)")
        print("Ctrl-C or SIGTERM stops it gracefully.", flush=True)

    configure_logging()
    try:
        run_server(serve(app, args.host, args.port, on_listening=listening,
                         reuse_port=args.reuse_port))
    finally:
        if tracing is not None:
            tracing.shutdown()  # the spans still batched go out
    return 0
