"""The routing policy: a YAML file that reads almost like prose, parsed into frozen objects."""

from taskroute.policy.loader import load_default_policy, load_policy, parse_policy
from taskroute.policy.model import Policy

__all__ = ["Policy", "load_default_policy", "load_policy", "parse_policy"]
