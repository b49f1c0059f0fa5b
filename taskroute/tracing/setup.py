"""Whether tracing is on, read from the environment, and the tracer it builds.

On when the `otel` extra is installed and any of these says so — `TASKROUTE_TRACING=on`,
`OTEL_TRACES_EXPORTER=otlp` (or `console`), or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) — and none says otherwise:
`TASKROUTE_TRACING=off`, `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. Merely
installing the extra exports nothing (OpenTelemetry's own default would be to send to
localhost:4318). Everything else (the endpoint, headers, `OTEL_SERVICE_NAME`, resource
attributes, the sampler, batching) is OpenTelemetry's to read as its variables say.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from taskroute.tracing.base import Tracing

log = logging.getLogger("taskroute.tracing")

ENV_SWITCH = "TASKROUTE_TRACING"
_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def enabled(env: Mapping[str, str]) -> bool:
    """Does the environment ask for traces (whether or not the extra is installed)?"""
    switch = env.get(ENV_SWITCH, "").strip().lower()
    exporters = {e.strip() for e in env.get("OTEL_TRACES_EXPORTER", "").lower().split(",")}
    if switch in _OFF or "none" in exporters or (
            env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"):
        return False
    return switch in _ON or bool(exporters & {"otlp", "console"}) or any(
        env.get(name, "").strip() for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def from_environment(env: Mapping[str, str]) -> Tracing | None:
    """The tracer the environment asks for, exporting over OTLP/HTTP; None when tracing is off,
    or (with a warning naming the extra) when OpenTelemetry is not installed."""
    if not enabled(env):
        return None
    try:
        from taskroute.tracing.otel import OtelTracing
    except ImportError:
        log.warning("tracing is asked for (OTEL_* / %s) but OpenTelemetry is not installed: "
                    "pip install 'taskroute[otel]'; serving without traces", ENV_SWITCH)
        return None
    return OtelTracing.exporting(env)
