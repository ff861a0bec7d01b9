"""Turn a finished span into the wire record of docs/design.md §3.3.

Runs on the export path (the worker thread, or the test kit), never on the
caller's: binding arguments, converting captured values and formatting
timestamps all happen here.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Dict, Optional

from fallom.infra._fork import at_fork
from fallom.infra._guard import logger, report_internal_error
from fallom.protocol._capture import Limits, clip, resolve
from fallom.protocol._fields import iso_time, output_json, timings_json, usage_json
from fallom.protocol._json import json_text
from fallom.protocol._wire import RAW_REQUEST, RAW_RESPONSE, RAW_TIMINGS, RAW_USAGE
from fallom.tracing import _extract
from fallom.tracing._span import _UNSET, Span

__all__ = ["Binder", "BoundArgs", "reset_warnings",
           "build_record"]

Record = dict[str, Any]


class Binder:
    """Binds a call's arguments to the decorated function's signature.

    Computed once per decoration site. When every parameter is plain
    positional-or-keyword, binding is zipping names with values, which is
    what ``bind_partial`` does for such a signature at a tenth of the cost;
    any other signature goes through ``bind_partial``.
    """

    __slots__ = ("after_self", "names", "signature")

    def __init__(self, signature: inspect.Signature) -> None:
        self.signature = signature
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.parameters.values())
        self.names: Optional[tuple[str, ...]] = tuple(signature.parameters) if plain else None
        self.after_self = self.names[1:] if self.names else None  # a method's, past ``self``

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(self.signature.bind_partial(*args, **kwargs).arguments)


class BoundArgs:
    """A call's arguments, bound to the signature only when the record is built."""

    __slots__ = ("args", "binder", "has_self", "kwargs")

    def __init__(self, binder: Optional[Binder], has_self: bool, args: tuple[Any, ...],
                 kwargs: Optional[tuple[tuple[str, Any], ...]]) -> None:
        self.binder, self.has_self, self.args, self.kwargs = binder, has_self, args, kwargs

    def to_dict(self, limits: Limits) -> dict[str, Any]:
        binder, args, kwargs = self.binder, self.args, self.kwargs
        names = None if binder is None else binder.after_self if self.has_self else binder.names
        if names is not None and len(args) <= len(names) and \
                (kwargs is None or all(key in names for key, _ in kwargs)):
            # plain parameters: each value is what snapshot() kept
            bound = {name: resolve(value, limits) for name, value in zip(names, args)}
            if kwargs:
                for key, value in kwargs:
                    bound[key] = resolve(value, limits)
            return bound
        return self._bind_slowly(limits)

    def _bind_slowly(self, limits: Limits) -> dict[str, Any]:
        args = (None, *self.args) if self.has_self else self.args
        kwargs = dict(self.kwargs) if self.kwargs else {}
        try:
            if self.binder is None:
                raise TypeError
            bound = self.binder.bind(args, kwargs)
            if self.has_self:
                bound.pop(next(iter(self.binder.signature.parameters)), None)
        except TypeError:
            bound = {"args": list(self.args), **kwargs}
        return {key: _resolve_deep(value, limits) for key, value in bound.items()}


def _resolve_deep(value: Any, limits: Limits) -> Any:
    # Captured arguments are scalars or Captured; a raw tuple or dict here can
    # only be what bind_partial collected for *args or **kwargs.
    if type(value) is tuple:
        return [resolve(item, limits) for item in value]
    if type(value) is dict:
        return {key: resolve(item, limits) for key, item in value.items()}
    return resolve(value, limits)


def _value(value: Any, limits: Limits) -> Any:
    if isinstance(value, BoundArgs):
        return value.to_dict(limits)
    return resolve(value, limits)


_DROPPED: Record = {}
_build_lock = threading.Lock()


@at_fork
def _new_build_lock() -> None:
    global _build_lock
    _build_lock = threading.Lock()


def build_record(span: Span) -> Optional[Record]:
    """The wire record of ``span`` after the redact hook; None when it is dropped.

    Built once per span (under a lock, as two processors may ask at once),
    after reading any response whose reading was deferred off the caller's path.
    """
    cached = span._record
    if cached is None:
        with _build_lock:
            cached = span._record
            if cached is None:
                cached = span._record = _finish_and_build(span)
    return None if cached is _DROPPED else cached


def _finish_and_build(span: Span) -> Record:
    deferred = span._deferred
    if deferred is not None:
        span._deferred = None
        reader, result, capture_output = deferred
        span._reading = True  # the one write allowed after end(): the call's own response
        try:
            fields = reader(result)
            if fields:
                _extract.apply(span, fields, capture_output=capture_output)
        except Exception as exc:
            report_internal_error(exc, "reading a response")
        finally:
            span._reading = False
    rt = span._rt  # the runtime the span started in, whatever init() did since
    record: Optional[Record] = _build(span, rt.limits)
    redact: Optional[Callable[[Record], Optional[Record]]] = rt.settings.redact
    if redact is not None and record is not None:
        record = _apply_redact(redact, record)
    return _DROPPED if record is None else record


_redact_failed = False


def reset_warnings() -> None:
    """A new ``init()`` may bring a new hook: its first failure is logged again."""
    global _redact_failed
    _redact_failed = False


def _apply_redact(redact: Callable[[Record], Optional[Record]], record: Record) -> Optional[Record]:
    """A failing hook drops the record rather than letting it out unredacted."""
    global _redact_failed
    try:
        result = redact(record)
        if result is not None and not isinstance(result, dict):
            raise TypeError(f"the redact hook returned {type(result).__name__}, not a dict or None")
    except Exception:
        if not _redact_failed:
            _redact_failed = True
            logger.exception("fallom: the redact hook failed; records it fails on are dropped")
        return None
    return result


def _build(span: Span, limits: Limits) -> Record:
    """The v2 record of docs/design.md §3.3: TraceData fields on top, the rest in ``attributes``.

    The export worker runs this for every span: plain attribute reads, and
    the fixed-shape timings written without the JSON encoder.
    """
    duration_ms = ((span.duration_ns or 0) + 500_000) // 1_000_000
    trace_id = f"{span._trace_id:032x}"
    session = span.session
    record: Record
    if session is not None:
        record = {"config_key": session.config_key, "session_id": session.session_id}
        if session.customer_id:
            record["customer_id"] = session.customer_id
    else:
        record = {"config_key": span._rt.settings.config_key, "session_id": trace_id}
    record["trace_id"] = trace_id
    record["span_id"] = f"{span._span_id:016x}"
    if span._parent_id is not None:
        record["parent_span_id"] = f"{span._parent_id:016x}"
    name = record["name"] = clip(span.name, limits.max_chars)  # a name may be made per call
    record["kind"] = span.kind
    if span.model is not None:
        record["model"] = span.model
    record["start_time"] = iso_time(span.start_ns)
    record["end_time"] = iso_time(span.start_ns + (span.duration_ns or 0))
    record["duration_ms"] = duration_ms
    ttft_ms = None
    if span.ttft_ns is not None:
        ttft_ms = record["time_to_first_token_ms"] = (span.ttft_ns + 500_000) // 1_000_000
    record["status"] = span.status
    if span.error_message:
        record["error_message"] = span.error_message
    if span.is_streaming:
        record["is_streaming"] = True
    if session is not None:
        if session.metadata:
            record["metadata"] = dict(session.metadata)  # made JSON-safe with the session
        if session.tags:
            record["tags"] = list(session.tags)
    record["attributes"] = _span_attributes(span, name, limits, duration_ms, ttft_ms)
    prompt = span.prompt
    if prompt is not None:
        record["prompt_key"] = prompt.key
        _optional(record, "prompt_version", _int_or_none(prompt.version))
        _optional(record, "prompt_ab_test_key", prompt.ab_test_key)
        _optional(record, "prompt_variant_index", _int_or_none(prompt.variant_index))
    return record


def _span_attributes(span: Span, name: str, limits: Limits, duration_ms: int,
                ttft_ms: Optional[int]) -> Dict[str, Any]:
    attributes: Dict[str, Any] = {}
    if span.attributes:
        attributes.update({k: resolve(v, limits) for k, v in span.attributes.items()})
    attributes["fallom.sdk_version"] = "2"
    attributes["fallom.method"] = span.method or name
    if span._capture:
        request = _request(span, limits)
        if request is not None:
            attributes[RAW_REQUEST] = _json_text(span, request)
        response = _response_text(span, limits)
        if response is not None:
            attributes[RAW_RESPONSE] = response
    usage = span.raw_usage if span.method is not None else None
    if usage is not None:
        attributes[RAW_USAGE] = _json_text(span, resolve(usage, limits))
    elif span.total_tokens is not None or span.prompt_tokens is not None \
            or span.completion_tokens is not None:
        attributes[RAW_USAGE] = usage_json(span.prompt_tokens, span.completion_tokens,
                                           span.total_tokens)
    attributes[RAW_TIMINGS] = timings_json(duration_ms, (span.duration_ns or 0) // 1000, ttft_ms,
                                           (span.ttft_ns or 0) // 1000, span.is_streaming)
    return attributes


def _request(span: Span, limits: Limits) -> Any:
    """A provider call's request as the reference wrappers send it, else the arguments."""
    if span.input is _UNSET:
        return None
    value = _value(span.input, limits)
    if span.method is not None:
        return value
    return {"input": value} if span.model is None else {"input": value, "model": span.model}


def _response_text(span: Span, limits: Limits) -> Optional[str]:
    """A provider call's response as the reference wrappers send it, else the output."""
    if span.method is not None and span.raw_response is not None:
        return _json_text(span, resolve(span.raw_response, limits))
    if span.output is _UNSET:
        return None
    text, cut = output_json(_value(span.output, limits))
    if cut:
        span._cut = True
    return text


def _json_text(span: Span, value: Any) -> str:
    """``value`` as a JSON string; what cannot be encoded is cut, with a marker."""
    text, cut = json_text(value)
    if cut:
        span._cut = True
    return text


def _int_or_none(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _optional(record: Record, key: str, value: Any) -> None:
    if value is not None:
        record[key] = value
