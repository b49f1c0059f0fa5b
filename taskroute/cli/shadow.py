"""`taskroute shadow report`: the policy's shadow against what was served — agreement by task
class, what the shadow's picks would have cost, and their quality where outcomes exist."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from taskroute.cli.common import add_policy_option
from taskroute.cli.stats import add_db_option, open_log, policy_of


def register(sub: Any) -> None:
    parser = sub.add_parser("shadow", help="shadow policies against the served one",
                            description=__doc__)
    nouns = parser.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    report = nouns.add_parser("report", help="agreement, cost and quality of the shadow",
                              description=__doc__)
    report.add_argument("--since", default="24h", help="time window: 24h, 7d, 90m or all")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    add_db_option(report)
    add_policy_option(report)
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from taskroute.quality import shadow
    from taskroute.quality.window import parse_window

    since_s = parse_window(args.since)
    prices = shadow.prices(policy_of(args))
    log = open_log(args)
    try:
        report = asyncio.run(log.shadow_report(since_s=since_s, prices=prices))
    finally:
        log.close()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _share(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "no outcomes yet"
    low, high = s["ci95"]
    return f"{s['good']}/{s['n']} ({_pct(s['rate'])}, {_pct(low)}–{_pct(high)})"


def render(report: dict[str, Any]) -> str:
    if not report["policies"]:
        return ("no shadow decisions in the window: give the policy a `shadow:` file and "
                "serve some requests")
    lines: list[str] = []
    for p in report["policies"]:
        a, q = p["agreement"], p["quality"]
        lines += [
            f"{p['policy']}: {p['requests']:,} requests; the same model for {_pct(a['model'])} "
            f"(tier {_pct(a['tier'])}, task class {_pct(a['task'])})",
            f"  would have cost ${p['shadow_cost_usd']:.6f} against ${p['served_cost_usd']:.6f}"
            " served (its first pick, priced at the served tokens)",
            f"  feedback good ({report['interval']}): {_share(q['shadow']['feedback'])} "
            f"against {_share(q['served']['feedback'])} served",
            f"  gates passed: {_share(q['shadow']['gates'])} "
            f"against {_share(q['served']['gates'])} served",
        ]
        if p["unpriced_models"]:
            lines.append(f"  not priced (no price known): {', '.join(p['unpriced_models'])}")
        head = ["class", "requests", "same model", "same tier", "shadow cost", "served cost",
                "shadow picks"]
        rows = [[c["task"], f"{c['requests']:,}", _pct(c["agreement"]["model"]),
                 _pct(c["agreement"]["tier"]), f"${c['shadow_cost_usd']:.6f}",
                 f"${c['served_cost_usd']:.6f}",
                 ", ".join(f"{m} ×{n}" for m, n in c["shadow_models"].items())]
                for c in p["classes"]]
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        for row in [head, *rows]:
            lines.append("  " + "  ".join(
                c.ljust(w) if i in (0, 6) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    return "\n".join(lines)
