"""A real OTLP/HTTP (protobuf) receiver on loopback, decoding what it gets."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, List

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._http import LoopbackServer, send_bytes


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _span(span: Any, scope: str, resource: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
            "parent_span_id": span.parent_span_id.hex(), "status": span.status.code,
            "message": span.status.message, "start": span.start_time_unix_nano,
            "end": span.end_time_unix_nano, "scope": scope, "resource": resource,
            "attributes": {a.key: _value(a.value) for a in span.attributes}}


class OtlpReceiver(LoopbackServer):
    def __init__(self) -> None:
        self.spans: List[Dict[str, Any]] = []
        self.headers: List[Dict[str, str]] = []
        self.cond = threading.Condition()
        super().__init__()

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers["Content-Length"]))
        if handler.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        request = ExportTraceServiceRequest.FromString(raw)
        with self.cond:
            self.headers.append(dict(handler.headers))
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    self.spans += [_span(span, scope_spans.scope.name, resource)
                                   for span in scope_spans.spans]
            self.cond.notify_all()
        send_bytes(handler, 200, b"")

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.spans) < count:
                if deadline - time.monotonic() <= 0:
                    return False
                self.cond.wait(deadline - time.monotonic())
        return True

