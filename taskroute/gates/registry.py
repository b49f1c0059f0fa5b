"""Gate names used in a policy → gate objects.

Built-in gates and installed plugins' (entry-point group `taskroute.gates`) share one table,
`taskroute.plugins.GATES`; a gate module is imported when a policy first names it. In-process
gates come on top: pass `gates={"name": factory}` to `Router`. An entry is a factory
`(settings, GateEnv) -> Gate`, or a ready gate object when it takes no settings. Every gate a
policy names is built once when the Router is made, so an unknown name or bad settings fail
then, naming the gate and where the policy uses it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from typing import Any

from taskroute.exceptions import PolicyError
from taskroute.gates.base import Gate, GateEnv, GateFactory
from taskroute.plugins import GATES
from taskroute.policy.model import GateSpec, Policy


class GateRegistry:
    """The registered gates, with `extra` (by name, replacing a registered one) on top."""

    def __init__(self, extra: Mapping[str, GateFactory | Gate] | None = None) -> None:
        self._extra: dict[str, GateFactory] = {
            name: _as_factory(name, item) for name, item in (extra or {}).items()
        }

    @property
    def names(self) -> list[str]:
        return sorted({*GATES.names(), *self._extra})

    def factory(self, name: str) -> GateFactory | None:
        """The factory for `name`; None when nothing registers it (`PluginError` if its plugin
        does not import)."""
        if name in self._extra:
            return self._extra[name]
        if name not in GATES:
            return None
        return _as_factory(name, GATES.load(name))

    def build(self, spec: GateSpec, env: GateEnv, *, where: str) -> Gate:
        """One gate; PolicyError naming the gate and `where` ("task extraction") otherwise."""
        factory = self.factory(spec.name)
        key = _key(where)
        if factory is None:
            raise PolicyError(
                f"unknown gate '{spec.name}' in {where}; known gates: {', '.join(self.names)}",
                file=env.policy.source, key=key,
            )
        guard = nullcontext() if spec.name in self._extra else GATES.calling(spec.name)
        try:
            with guard:
                return factory(spec.params, env)
        except ValueError as exc:
            raise PolicyError(f"gate '{spec.name}' in {where}: {exc}",
                              file=env.policy.source, key=key) from None

    def build_for(self, policy: Policy, task: str, tier: str, env: GateEnv) -> tuple[Gate, ...]:
        """The gates judging answers for a task class served in a tier, in policy order."""
        gates: list[Gate] = []
        task_gates = policy.tasks[task].gates if task in policy.tasks else ()
        for specs, where in ((policy.gates, "the policy's gates"),
                             (policy.tier(tier).gates, f"tier {tier}"),
                             (task_gates, f"task {task}")):
            gates.extend(self.build(spec, env, where=where) for spec in specs)
        return tuple(gates)

    def check_policy(self, policy: Policy) -> None:
        """Build every gate the policy names once, so mistakes fail before any request."""
        env = GateEnv(policy=policy)
        for specs, where in _gate_lists(policy):
            for spec in specs:
                self.build(spec, env, where=where)


def _gate_lists(policy: Policy) -> Iterator[tuple[tuple[GateSpec, ...], str]]:
    yield policy.gates, "the policy's gates"
    for tier in policy.tiers:
        yield tier.gates, f"tier {tier.name}"
    for task in policy.tasks.values():
        yield task.gates, f"task {task.name}"


def _key(where: str) -> str:
    if where.startswith("task "):
        return f"tasks.{where[5:]}.gates"
    if where.startswith("tier "):
        return f"tiers.{where[5:]}.gates"
    return "gates"


def _as_factory(name: str, item: GateFactory | Gate) -> GateFactory:
    if hasattr(item, "check"):
        gate: Any = item

        def fixed(params: Mapping[str, Any], env: GateEnv) -> Gate:
            if params:
                raise ValueError(f"the {name} gate takes no settings")
            return gate  # type: ignore[no-any-return]

        return fixed
    if callable(item):
        return item
    raise TypeError(f"gate {name!r} must be a gate (with a check method) or a factory")
