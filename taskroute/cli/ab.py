"""`taskroute ab report`: the policy's variants compared on every route-quality metric."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from taskroute.cli.common import add_policy_option
from taskroute.cli.stats import add_db_option, open_log, policy_of


def register(sub: Any) -> None:
    parser = sub.add_parser("ab", help="A/B tests of policies", description=__doc__)
    nouns = parser.add_subparsers(dest="ab_command", metavar="ACTION", required=True)
    report = nouns.add_parser("report", help="compare the variants, with significance")
    report.add_argument("--since", default="7d", help="time window: 24h, 7d or all")
    report.add_argument("--json", action="store_true")
    add_db_option(report)
    add_policy_option(report)
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from taskroute.quality.window import parse_window

    since_s = parse_window(args.since)
    policy = policy_of(args)
    log = open_log(args)
    try:
        report = asyncio.run(log.ab_report(since_s=since_s, tier_order=policy.tier_names,
                                           variants=[v.name for v in policy.variants]))
    finally:
        log.close()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    if not report["comparisons"]:
        return str(report.get("note", "no comparison"))
    lines = []
    for comparison in report["comparisons"]:
        lines.append(f"{comparison['variant']} against {comparison['control']}:")
        for name, m in comparison["metrics"].items():
            if m.get("difference") is None:
                lines.append(f"  {name:<17} not enough data: {m.get('why') or 'none'}")
                continue
            lines.append(
                f"  {name:<17} {m['a']:.6g} → {m['b']:.6g} (Δ {m['difference']:+.6g}, "
                f"95% CI {m['ci95'][0]:+.4g} … {m['ci95'][1]:+.4g}) {_verdict(m)}")
    return "\n".join(lines)


def _verdict(m: dict[str, Any]) -> str:
    """SIGNIFICANT, or not with the reason, and how many more requests would tell a difference
    this large (the sample size is only a question while the answer is unknown)."""
    if m["significant"]:
        return "SIGNIFICANT"
    verdict = f"not significant: {m['why']}" if m.get("why") else "not significant"
    more = m.get("more_needed", m.get("needed_per_variant"))
    if more:
        return f"{verdict}; ~{more:,} more requests per variant to tell"
    return verdict
