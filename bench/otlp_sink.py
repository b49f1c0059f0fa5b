"""A minimal OTLP/HTTP trace receiver for the benches: decodes every POST /v1/traces body as an
`ExportTraceServiceRequest` (as a collector would), counts the spans, answers 200; GET /count
says how many arrived. Run as its own process, so receiving costs the measured gateway nothing
but the export itself:

    .venv/bin/python bench/otlp_sink.py --port 4318
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_REPLY = ExportTraceServiceResponse().SerializeToString()


class _Count:
    def __init__(self) -> None:
        self.spans = 0
        self.lock = threading.Lock()


def handler(count: _Count) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as the exporter's session expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            with count.lock:
                count.spans += spans
            self._reply(_REPLY, "application/x-protobuf")

        def do_GET(self) -> None:
            self._reply(str(count.spans).encode(), "text/plain")

        def _reply(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(_Count()))
    server.serve_forever()  # until SIGTERM


if __name__ == "__main__":
    main()
