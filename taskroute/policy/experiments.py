"""The policy's `variants`, `shadow` and `budgets` sections.

    variants:                      # an A/B test: sticky per user (or metadata.session_id)
      control: {weight: 90}        # the policy as written
      lean:
        weight: 10
        override:                  # a fragment: these sections replace the policy's own
          tasks: {qa: fast, coding: fast}
      other: {weight: 10, policy: other.yaml}   # or a whole policy file, next to this one
    shadow: candidate.yaml         # decided and logged for every request, never served
    budgets:                       # USD per day, reset at 00:00 UTC
      per user: 5
      per key: 50
      per day: 500
      step down below: 20%         # of a budget left: requests move down one tier
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from taskroute.exceptions import PolicyError
from taskroute.policy.model import BudgetSpec, Policy, VariantSpec
from taskroute.policy.nodes import Node, normalize_key, read_yaml

SECTIONS = ("variants", "shadow", "budgets")
# Sections a variant or shadow policy never has of its own: there is one experiment at a time.
_NOT_NESTED = frozenset(SECTIONS) - {"budgets"}

ParseRoot = Callable[[Node, str | None], Policy]


def parse_sections(
    top: dict[str, Node], root: Node, file: str | None, parse_root: ParseRoot
) -> dict[str, Any]:
    """The keyword arguments for `Policy` from these sections (none when absent)."""
    found: dict[str, Any] = {}
    if "variants" in top:
        found["variants"] = _variants(top["variants"], root, file, parse_root)
    if "shadow" in top:
        found["shadow"] = _other_policy(top["shadow"], root, file, parse_root, "shadow")
    if "budgets" in top:
        found["budgets"] = _budgets(top["budgets"])
    return found


def _variants(
    node: Node, root: Node, file: str | None, parse_root: ParseRoot
) -> tuple[VariantSpec, ...]:
    variants: list[VariantSpec] = []
    for name, spec in node.items():
        f = spec.fields(("weight", "policy", "override"), required=("weight",))
        if "policy" in f and "override" in f:
            spec.fail("a variant takes 'policy' (a file) or 'override' (sections), not both")
        policy = None
        if "override" in f:
            policy = parse_root(_merged(root, f["override"]), file)
        elif "policy" in f:
            policy = _policy_file(f["policy"], file, parse_root, f"variant {name}")
        variants.append(VariantSpec(
            name=name, weight=f["weight"].number(low=0), policy=policy, line=spec.line,
        ))
    if len(variants) < 2:
        node.fail("an A/B test needs at least two variants")
    if sum(v.weight for v in variants) <= 0:
        node.fail("the variants' weights add up to zero; give at least one a weight above 0")
    return tuple(variants)


def _other_policy(
    node: Node, root: Node, file: str | None, parse_root: ParseRoot, what: str
) -> Policy:
    """A policy file named relative to this one (`x.yaml` or {policy: x.yaml}), or this policy
    with some sections replaced ({override: {...}})."""
    if not node.is_mapping():
        return _policy_file(node, file, parse_root, what)
    f = node.fields(("policy", "override"))
    if len(f) != 1:
        node.fail(f"the {what} takes 'policy' (a file) or 'override' (sections)")
    if "override" in f:
        return parse_root(_merged(root, f["override"]), file)
    return _policy_file(f["policy"], file, parse_root, what)


def _policy_file(node: Node, file: str | None, parse_root: ParseRoot, what: str) -> Policy:
    path = Path(node.text())
    if not path.is_absolute() and file and not file.startswith("<"):
        path = Path(file).parent / path
    try:  # the loader's own parse_root, handed in: this module sits below the loader
        policy = parse_root(read_yaml(path), str(path))
    except PolicyError as exc:
        node.fail(f"the {what}'s policy file does not load: {exc}")
    if policy.variants or policy.shadow is not None:
        node.fail(f"the {what}'s policy file has variants or a shadow of its own; "
                  "one experiment at a time")
    return policy


def _merged(root: Node, override: Node) -> Node:
    """This policy's root with the override's sections in place of its own (line numbers kept,
    so an error in the fragment points at the fragment)."""
    replaced = {normalize_key(k) for k, _ in override.items()}
    bad = replaced & _NOT_NESTED
    if bad:
        override.fail(f"an override cannot set {', '.join(sorted(bad))}")
    assert isinstance(root.node, yaml.MappingNode) and isinstance(override.node, yaml.MappingNode)
    kept = [
        (key, value) for key, value in root.node.value
        if normalize_key(str(key.value)) not in replaced | _NOT_NESTED
    ]
    merged = yaml.MappingNode(root.node.tag, kept + list(override.node.value),
                              root.node.start_mark, root.node.end_mark)
    return Node(merged, root.file, "")


def _budgets(node: Node) -> BudgetSpec:
    f = node.fields(("per user", "per key", "per day", "step down below"))
    if not any(k in f for k in ("per user", "per key", "per day")):
        node.fail("budgets need at least one of: per user, per key, per day (USD a day)")
    step = 0.2
    if "step down below" in f:
        step = _share(f["step down below"])
    return BudgetSpec(
        per_user_usd=f["per user"].number(low=0) if "per user" in f else None,
        per_key_usd=f["per key"].number(low=0) if "per key" in f else None,
        per_day_usd=f["per day"].number(low=0) if "per day" in f else None,
        step_down_below=step, line=node.line,
    )


def _share(node: Node) -> float:
    """A share written 0.2 or 20%."""
    if node.kind == "a number":
        return node.number(low=0, high=1)
    text = node.text().strip()
    if text.endswith("%"):
        try:
            value = float(text[:-1]) / 100
        except ValueError:
            value = -1.0
        if 0 <= value <= 1:
            return value
    node.fail(f"expected a share such as 0.2 or 20%, got {text!r}")
