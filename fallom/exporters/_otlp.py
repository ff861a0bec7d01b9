"""OTLP out: fallom's own spans to any OpenTelemetry collector, GenAI conventions.

A second destination beside Fallom (Jaeger, Tempo, Honeycomb, a collector),
on the same batch pipeline. The user's global TracerProvider is never
touched; spans that came in through ``FallomExporter`` are not sent back out.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from fallom._version import __version__
from fallom.exporters._base import BaseExporter, ExportResult
from fallom.infra._config import OTEL_EXTRA
from fallom.infra._guard import logger
from fallom.protocol import _names as attr
from fallom.protocol._json import repaired
from fallom.protocol._wire import RecordView

try:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - exercised in the noproviders env
    raise ImportError(f"OTLP export needs {OTEL_EXTRA}") from exc

__all__ = ["OtlpExporter", "attributes"]

_OPERATIONS = {"llm": "chat", "embedding": "embeddings", "tool": "execute_tool"}


def _ns(iso: str) -> int:
    moment = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


_INT64 = 1 << 63


def _value(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return str(value)  # OTLP holds 64-bit integers: a larger one would fail the batch
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, default=str)


def attributes(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The OTel attributes of a fallom record, GenAI names first."""
    view = RecordView(record)
    extra: Mapping[str, Any] = view.attributes
    out: Dict[str, Any] = {k: _value(v) for k, v in extra.items()}
    kind = record.get("kind", "span")
    prompt_tokens, completion_tokens, total_tokens = view.usage
    genai = {
        attr.OPERATION: extra.get(attr.OPERATION) or _OPERATIONS.get(kind),
        attr.REQUEST_MODEL: extra.get(attr.REQUEST_MODEL) or record.get("model"),
        attr.RESPONSE_MODEL: record.get("model"),
        "gen_ai.usage.input_tokens": prompt_tokens,
        "gen_ai.usage.output_tokens": completion_tokens,
        "gen_ai.conversation.id": record.get("session_id"),
        "gen_ai.prompt.name": record.get("prompt_key"),
        "gen_ai.prompt.version": record.get("prompt_version"),
        "fallom.kind": kind,
        "fallom.config_key": record.get("config_key"),
        "fallom.customer_id": record.get("customer_id"),
        "fallom.total_tokens": total_tokens,
        "fallom.time_to_first_token_ms": view.time_to_first_token_ms,
        "fallom.is_streaming": record.get("is_streaming"),
        "fallom.prompt_ab_test_key": record.get("prompt_ab_test_key"),
        "fallom.prompt_variant_index": record.get("prompt_variant_index"),
        "fallom.tags": record.get("tags"),
        "fallom.metadata": record.get("metadata"),
    }
    if view.has_input:  # present only with content capture on
        genai["gen_ai.input.messages"] = view.input
    if view.has_output:
        genai["gen_ai.output.messages"] = view.output
    out.update({k: _value(v) for k, v in genai.items() if v is not None})
    return out


class OtlpExporter(BaseExporter):
    """Converts records to OTel spans and sends them with the OTLP/HTTP exporter."""

    def __init__(self, endpoint: str, headers: Optional[Mapping[str, str]] = None,
                 timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self._exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}),
                                          timeout=timeout)
        service = os.environ.get("OTEL_SERVICE_NAME") or "fallom"
        self._resource = Resource.create({"service.name": service})
        self._scope = InstrumentationScope("fallom", __version__)

    def __repr__(self) -> str:
        return f"OtlpExporter(endpoint={self.endpoint!r})"

    def _span(self, record: Mapping[str, Any]) -> ReadableSpan:
        flags = TraceFlags(TraceFlags.SAMPLED)
        context = SpanContext(int(record["trace_id"], 16), int(record["span_id"], 16),
                              is_remote=False, trace_flags=flags)
        parent = None
        if record.get("parent_span_id"):
            parent = SpanContext(int(record["trace_id"], 16), int(record["parent_span_id"], 16),
                                 is_remote=False, trace_flags=flags)
        status = Status(StatusCode.ERROR, record.get("error_message")) \
            if record.get("status") == "ERROR" else Status(StatusCode.OK)
        start = _ns(record["start_time"])
        return ReadableSpan(name=record["name"], context=context, parent=parent,
                            resource=self._resource, attributes=attributes(record),
                            status=status, start_time=start,
                            end_time=start + int((RecordView(record).duration_ms or 0) * 1e6),
                            instrumentation_scope=self._scope)

    def export(self, records: List[Dict[str, Any]]) -> ExportResult:
        """Send ``records``; one that cannot be made a span is dropped alone, and text that
        protobuf cannot encode (a lone surrogate) is repaired, so the batch goes."""
        result = ExportResult()
        spans = []
        for record in records:
            try:
                spans.append(self._span(repaired(record)))
            except Exception as exc:
                logger.debug("fallom: a record could not be made an OTLP span: %s",
                             type(exc).__name__)
                result.drop("export_error", 1)
        if spans and self._exporter.export(spans) is SpanExportResult.SUCCESS:
            result.sent, result.batches = len(spans), 1
        elif spans:
            result.drop("export_error", len(spans))
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
