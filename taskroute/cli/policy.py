"""`taskroute policy check|show`: validate a policy; print it as prose."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from taskroute.classify.registry import build_classifier
from taskroute.cli.common import add_policy_option
from taskroute.exceptions import ConfigError
from taskroute.policy.loader import default_policy_text, load_default_policy, load_policy
from taskroute.policy.prose import describe_policy
from taskroute.providers.registry import build_providers
from taskroute.router import Router


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("policy", help="check or show a policy")
    nouns = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = nouns.add_parser("check", help="validate a policy file")
    check.add_argument("file", nargs="?")
    add_policy_option(check)  # `--policy FILE`, as every other command takes it
    check.set_defaults(func=run_check)
    show = nouns.add_parser("show", help="print a policy as prose (default: the bundled one)")
    show.add_argument("file", nargs="?")
    add_policy_option(show)
    show.add_argument("--yaml", action="store_true", help="print the policy file itself")
    show.set_defaults(func=run_show)


def _file(args: argparse.Namespace, *, required: bool) -> str | None:
    """The policy named as FILE or as --policy FILE (not two different ones)."""
    if args.file and args.policy and args.file != args.policy:
        raise ConfigError(f"two policies named: {args.file} and --policy {args.policy}")
    file: str | None = args.file or args.policy
    if required and not file:
        raise ConfigError("name the policy to check: taskroute policy check FILE")
    return file


def run_check(args: argparse.Namespace) -> int:
    args.file = _file(args, required=True)
    policy = load_policy(args.file)
    Router(policy, classifier=False)  # building the router checks what spans sections
    build_providers(policy)  # and building the providers checks their options
    if policy.classifier.enabled:
        build_classifier(policy)  # the named classifier, its options and model file
    print(
        f"{args.file}: ok — {len(policy.models)} models, {len(policy.tiers)} tiers, "
        f"{len(policy.tasks)} task classes, {len(policy.classify_rules)} classify rules, "
        f"{len(policy.adjust_rules)} adjustments"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    args.file = _file(args, required=False)
    if args.yaml:
        # Checked first, so what is printed is a policy that loads.
        policy_text = default_policy_text()
        if args.file:
            load_policy(args.file)
            policy_text = Path(args.file).read_text(encoding="utf-8")
        print(policy_text, end="")
        return 0
    policy = load_policy(args.file) if args.file else load_default_policy()
    print(describe_policy(policy))
    return 0
