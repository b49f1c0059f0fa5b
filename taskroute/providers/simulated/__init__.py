"""SIMULATED stand-in upstream for tests, `taskroute demo` and benchmarks: no real model is called.

    async with SimulatedUpstream({"small": ModelProfile(skill=0.4)}) as upstream:
        upstream.fail("small", 503, times=2)     # two failures, then it recovers
        ... point a provider at upstream.base_url ...
        assert upstream.requests["small"] == 3
"""

from taskroute.providers.simulated.answers import HEDGE, REFUSAL, difficulty
from taskroute.providers.simulated.profiles import INSTANT, Behaviour, ModelProfile
from taskroute.providers.simulated.server import SimulatedUpstream

__all__ = [
    "HEDGE",
    "INSTANT",
    "REFUSAL",
    "Behaviour",
    "ModelProfile",
    "SimulatedUpstream",
    "difficulty",
]
