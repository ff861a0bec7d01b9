"""OTLP/HTTP trace requests (JSON or protobuf) as fallom records.

Any OpenTelemetry SDK, in any language, can point its OTLP exporter at
``fallom serve``: its spans go through the GenAI mapping ``FallomExporter``
uses, so a model call from a Node or Go app is stored as an LLM span with
its model, tokens and content.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from fallom.infra._config import OTEL_EXTRA
from fallom.protocol._genai import SpanData, record_from_genai

__all__ = ["OTLP_PROTOBUF", "ProtobufMissingError", "is_otlp", "records_from_otlp", "from_protobuf"]

OTLP_PROTOBUF = "application/x-protobuf"
_ERROR_CODES = (2, "STATUS_CODE_ERROR")
_MAX_VALUE_DEPTH = 16
_DIGITS = re.compile(r"[0-9]{1,19}")  # str.isdigit() takes "²" too


class ProtobufMissingError(Exception):
    """OTLP protobuf needs the ``otel`` extra."""


def is_otlp(body: Any) -> bool:
    return isinstance(body, dict) and "resourceSpans" in body


def from_protobuf(raw: bytes) -> Dict[str, Any]:
    """An OTLP protobuf request as the OTLP/JSON mapping of it."""
    try:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError as exc:
        raise ProtobufMissingError(f"OTLP protobuf needs {OTEL_EXTRA} (or send OTLP/JSON)"
                                   ) from exc
    message = ExportTraceServiceRequest.FromString(raw)
    result: Dict[str, Any] = MessageToDict(message)
    return result


def records_from_otlp(body: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], List[str]]:
    """The records of an OTLP request, and why each span that could not be read was not."""
    records, errors = [], []
    for span in _spans(body):
        try:
            records.append(record_from_genai(_span_data(span), None, True, "default"))
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError,
                RecursionError) as exc:  # the span's values, not this server: refused alone
            errors.append(f"span {span.get('name')!r}: {exc}" if isinstance(span, dict)
                          else "a span is not an object")
    return records, errors


def _spans(body: Dict[str, Any]) -> Iterator[Any]:
    for resource_spans in _list(body.get("resourceSpans")):
        if not isinstance(resource_spans, dict):
            continue
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans")
        for scope in _list(scopes):
            if isinstance(scope, dict):
                yield from _list(scope.get("spans"))


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def _span_data(span: Any) -> SpanData:
    if not isinstance(span, dict):
        raise TypeError("a span is not an object")
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    start = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = _nanos(span.get("endTimeUnixNano", start), "endTimeUnixNano")
    status: Dict[str, Any] = span["status"] if isinstance(span.get("status"), dict) else {}
    message = status.get("message")
    events = [(str(event.get("name")), _key_values(event.get("attributes")))
              for event in _list(span.get("events")) if isinstance(event, dict)]
    parent = span.get("parentSpanId")
    return SpanData(
        name=name, trace_id=_id(span.get("traceId"), 16, "traceId"),
        span_id=_id(span.get("spanId"), 8, "spanId"),
        parent_id=_id(parent, 8, "parentSpanId") if parent else None,
        start_ns=start, end_ns=end, error=status.get("code") in _ERROR_CODES,
        status_message=message if isinstance(message, str) else None,
        attributes=_key_values(span.get("attributes")), events=events)


def _id(value: Any, size: int, field: str) -> int:
    """OTLP/JSON writes ids in hex; the protobuf JSON mapping in base64: take both."""
    if isinstance(value, str):
        if len(value) == size * 2:
            try:
                number = int(value, 16)
            except ValueError:
                number = -1
            if number > 0:
                return number
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size and any(raw):
            return int.from_bytes(raw, "big")
    raise ValueError(f"{field} must be {size * 2} hex characters (not all zero)")


def _nanos(value: Any, field: str) -> int:
    """Nanoseconds since the epoch: an integer, or a string of digits as OTLP/JSON sends."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise ValueError(f"{field} must be an integer of nanoseconds")


def _key_values(items: Any, depth: int = 0) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for item in _list(items):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _value(item.get("value"), depth)
    return out


def _value(value: Any, depth: int) -> Any:
    """An OTLP ``AnyValue`` as a plain value."""
    if not isinstance(value, Mapping) or depth > _MAX_VALUE_DEPTH:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return _int(value["intValue"])
    if "doubleValue" in value:
        return value["doubleValue"] if isinstance(value["doubleValue"], (int, float)) else None
    if "arrayValue" in value:
        inner = value["arrayValue"] if isinstance(value["arrayValue"], dict) else {}
        return [_value(v, depth + 1) for v in _list(inner.get("values"))]
    if "kvlistValue" in value:
        inner = value["kvlistValue"] if isinstance(value["kvlistValue"], dict) else {}
        return _key_values(inner.get("values"), depth + 1)
    if "bytesValue" in value:
        return value["bytesValue"] if isinstance(value["bytesValue"], str) else None
    return None


def _int(value: Any) -> Optional[int]:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -2**63 <= number < 2**63 else None
