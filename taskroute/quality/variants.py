"""Sticky A/B assignment: the same user (or session) always lands in the same variant.

The unit is hashed with SHA-256 (stable across processes and Python versions, unlike `hash()`)
together with the experiment's variant names, so changing the variants reshuffles everyone once.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from taskroute.policy.model import VariantSpec
from taskroute.request import ChatRequest

_SCALE = float(1 << 64)


def assignment_unit(request: ChatRequest) -> str | None:
    """Who the assignment sticks to: the OpenAI `user`, else `metadata.session_id` (or
    `metadata.user_id`); None for an anonymous request, which is assigned at random."""
    unit = request.user or request.meta("session_id") or request.meta("user_id")
    return str(unit) if unit else None


def position(unit: str, salt: str) -> float:
    """A number in [0, 1) fixed by the unit and the salt."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(
    variants: Sequence[VariantSpec], unit: str | None, *, rng: random.Random | None = None
) -> VariantSpec:
    """The variant for `unit`, by the variants' weights."""
    total = sum(v.weight for v in variants)
    salt = ",".join(v.name for v in variants)
    x = position(unit, salt) if unit is not None else (rng or random).random()
    point = x * total
    running = 0.0
    for variant in variants:
        running += variant.weight
        if point < running:
            return variant
    return [v for v in variants if v.weight > 0][-1]
