"""Provider adapters: one module per wire format, behind the `Provider` Protocol, each a
provider kind in `taskroute.plugins.PROVIDERS` (see `registry.py`)."""

from taskroute.providers.base import Provider, Timeouts

__all__ = ["Provider", "Timeouts"]
