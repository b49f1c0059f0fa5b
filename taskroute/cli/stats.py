"""`taskroute stats`: route-quality metrics from the request log, as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from taskroute.cli.common import add_policy_option
from taskroute.exceptions import CallerError
from taskroute.policy.model import Policy

if TYPE_CHECKING:
    from taskroute.store.base import LogReader

    class OpenLog(LogReader, Protocol):
        def close(self) -> None: ...

_COLUMNS = (
    ("requests", "requests", "{:,}"), ("first pass", "first_pass", "pct"),
    ("escalation", "escalation", "pct"), ("cost/task", "cost_per_task", "${:.6f}"),
    ("p50", "latency_p50", "ms"), ("p95", "latency_p95", "ms"),
    ("ttft p50", "first_token_p50", "ms"), ("ttft p95", "first_token_p95", "ms"),
    ("errors", "upstream_error", "pct"), ("corrected", "correction", "pct"),
    ("under", "under_served", "pct"), ("over", "over_served", "pct"),
)


def register(sub: Any) -> None:
    parser = sub.add_parser("stats", help="route-quality metrics from the request log",
                            description=__doc__)
    parser.add_argument("--since", default="24h", help="time window: 24h, 7d, 90m or all")
    parser.add_argument("--by", default="route",
                        choices=("route", "class", "model", "tier", "policy"),
                        help="group by route (class × tier × model, the default) or one field")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_db_option(parser)
    add_policy_option(parser)
    parser.set_defaults(func=run)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    from taskroute.cli.serve import add_log_option

    add_log_option(parser)


def open_log(args: argparse.Namespace) -> OpenLog:
    """The request log named by --db (or the default one): a SQLite file that must exist, or a
    PostgreSQL database; the caller closes it."""
    from taskroute.cli.serve import log_url
    from taskroute.store.sqlite import SqliteStore

    url = log_url(args.db)
    if not url.startswith("sqlite:"):
        from taskroute.store.registry import open_store

        return cast("OpenLog", open_store(url))  # every built-in store reads, and closes
    db = Path(url.removeprefix("sqlite:").removeprefix("//"))
    if not db.exists():
        raise CallerError(f"no request log at {db}; run `taskroute serve` or pass --db")
    return SqliteStore(db)



def policy_of(args: argparse.Namespace) -> Policy:
    from taskroute.policy.loader import load_default_policy, load_policy

    return load_policy(args.policy) if args.policy else load_default_policy()


def run(args: argparse.Namespace) -> int:
    from taskroute.quality.window import parse_window

    since = parse_window(args.since)
    tiers = policy_of(args).tier_names
    log = open_log(args)
    try:
        report = asyncio.run(log.route_stats(since_s=since, by=args.by, tier_order=tiers))
    finally:
        log.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))
    return 0


def _fmt(value: Any, how: str) -> str:
    if value is None:
        return "–"
    if how == "pct":
        return f"{value * 100:.1f}%"
    if how == "ms":
        return f"{value * 1000:.0f}ms"
    return how.format(value)


def render_table(report: dict[str, Any]) -> str:
    keys = report["group_fields"]
    head = [*keys, *(title for title, _, _ in _COLUMNS)]
    rows = [[str(r[k]) for k in keys] + [_fmt(r[f], how) for _, f, how in _COLUMNS]
            for r in report["rows"]]
    total = report["total"]
    rows.append(["total", *[""] * (len(keys) - 1)] + [_fmt(total[f], how)
                                                      for _, f, how in _COLUMNS])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) if i < len(keys) else h.rjust(w)
                       for i, (h, w) in enumerate(zip(head, widths, strict=True)))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i < len(keys) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    window = "all time" if report["window_s"] is None else f"the last {report['window_s']:g}s"
    lines.append(f"{total['requests']:,} requests over {window}; "
                 f"{total['feedback']:,} with feedback; computed in {report['query_ms']} ms")
    refused = report.get("refused") or {}
    if refused.get("requests"):  # refused before routing: not in the rows or the total
        by = ", ".join(f"{n:,} × {status}" for status, n in refused["by_status"].items())
        lines.append(f"{refused['requests']:,} more refused before routing ({by})")
    misroutes = report.get("misroutes") or {}
    if misroutes.get("misrouted"):  # feedback naming another class than the one served
        pairs = ", ".join(f"{p['served']} → {p['named']} × {p['requests']:,}"
                          for p in misroutes["pairs"])
        lines.append(f"{misroutes['misrouted']:,} misrouted, by feedback naming the class "
                     f"({pairs})")
    return "\n".join(lines)
