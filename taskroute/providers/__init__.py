"""Provider adapters: one module per wire format, behind the `Provider` Protocol."""

from taskroute.providers.base import Provider, Timeouts

__all__ = ["Provider", "Timeouts"]
