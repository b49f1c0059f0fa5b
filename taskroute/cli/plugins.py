"""`taskroute plugins`: what each extension point has registered, and where it came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskroute.exceptions import PluginError
from taskroute.plugins import ALL, Entry, Registry


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "plugins", help="list provider kinds, gates, classifiers, stores and session backends",
        description="List what is registered per extension point: built in, or from an "
        "installed distribution's entry points (groups taskroute.providers, taskroute.gates, "
        "taskroute.classifiers, taskroute.stores, taskroute.sessions). Each plugin is imported "
        "to check it; one that fails is shown with its error, and the exit code is 1.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = {registry.group: [_row(registry, e) for e in registry.entries()]
              for registry in ALL}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for registry in ALL:
            print(f"{registry.what}s ({registry.group})")
            rows = report[registry.group]
            width = max((len(r["name"]) for r in rows), default=0)
            for row in rows:
                status = f"  BROKEN: {row['error']}" if row["error"] else (
                    f"  ignored: {row['ignored']}" if row["ignored"] else "")
                print(f"  {row['name']:<{width}}  {row['origin']}{status}")
    broken = any(row["error"] for rows in report.values() for row in rows)
    return 1 if broken else 0


def _row(registry: Registry, entry: Entry) -> dict[str, Any]:
    error = None
    if entry.ignored is None and entry.distribution is not None:
        try:
            registry.load(entry.name)
        except PluginError as exc:
            error = str(exc)
    return {"name": entry.name, "origin": entry.origin, "distribution": entry.distribution,
            "version": entry.version, "ref": entry.ref, "ignored": entry.ignored,
            "error": error}
