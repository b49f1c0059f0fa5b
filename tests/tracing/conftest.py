"""Tracing tests drive the real gateway fixture of tests/gateway."""

from tests.gateway.conftest import gateway, start_gateway

__all__ = ["gateway", "start_gateway"]
