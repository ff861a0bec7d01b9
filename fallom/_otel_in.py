"""``FallomExporter``: spans from OpenTelemetry-instrumented code, as fallom records.

Agent frameworks and instrumentations (opentelemetry-instrumentation-openai,
OpenLLMetry, the OpenAI Agents SDK, Pydantic AI, LlamaIndex) describe LLM
calls with GenAI semantic-convention attributes; this exporter maps the
current names and the common older ones onto the fallom record and hands the
records to fallom's own delivery pipeline.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from . import _attributes as attr
from ._context import CURRENT_SESSION
from ._guard import report_internal_error
from ._record import _apply_redact, iso_time
from ._session import SessionContext
from ._state import STATE

__all__ = ["FallomExporter", "ForeignSpan"]

_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model",
          "llm.request.model")
_INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                 "llm.usage.prompt_tokens")
_OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                  "llm.usage.completion_tokens")
_TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")
_TTFT_MS = ("gen_ai.response.time_to_first_token_ms", "llm.time_to_first_token_ms")
_TTFT_S = ("gen_ai.server.time_to_first_token", "gen_ai.response.time_to_first_token")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.vendor")
_SESSION = ("gen_ai.conversation.id", "session.id")
_INPUT = ("gen_ai.input.messages", "gen_ai.prompt", "input.value", "llm.prompts")
_OUTPUT = ("gen_ai.output.messages", "gen_ai.completion", "output.value", "llm.completions")
_INDEXED = (("gen_ai.prompt.", "input"), ("gen_ai.completion.", "output"),
            ("llm.prompts.", "input"), ("llm.completions.", "output"))


class ForeignSpan:
    """A finished record from elsewhere, shaped for fallom's processors."""

    __slots__ = ("_parent_id", "_record", "_trace_id", "sampled")
    foreign = True

    def __init__(self, record: Dict[str, Any], trace_id: int, parent_id: Optional[int]) -> None:
        self._record, self._trace_id, self._parent_id = record, trace_id, parent_id
        self.sampled = True


def _first(attrs: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _indexed(attrs: Mapping[str, Any], prefix: str) -> Optional[list[Dict[str, Any]]]:
    """OpenLLMetry's ``gen_ai.prompt.0.role`` / ``.content`` as a list of messages."""
    messages: Dict[int, Dict[str, Any]] = {}
    for name, value in attrs.items():
        if name.startswith(prefix):
            index, _, field = name[len(prefix):].partition(".")
            if index.isdigit() and field:
                messages.setdefault(int(index), {})[field] = value
    return [messages[i] for i in sorted(messages)] or None


def _content_keys(attrs: Mapping[str, Any]) -> set[str]:
    keys = {k for k in attrs if k in _INPUT or k in _OUTPUT}
    keys |= {k for k in attrs for prefix, _ in _INDEXED if k.startswith(prefix)
             and (k.endswith(".content") or k.endswith(".arguments"))}
    return keys


def _error(span: ReadableSpan, capture: bool) -> Optional[str]:
    kind: Any = None
    message: Any = span.status.description
    for event in span.events:
        if event.name == "exception" and event.attributes:
            kind = event.attributes.get("exception.type") or kind
            message = event.attributes.get("exception.message") or message
    if not capture:
        return str(kind or "Error").rsplit(".", 1)[-1]
    return f"{kind}: {message}" if kind and message else str(message or kind or "Error")


def to_record(span: ReadableSpan, session: Optional[SessionContext],
              capture: bool) -> Dict[str, Any]:
    """One OpenTelemetry span as a fallom wire record."""
    attrs = dict(span.attributes or {})
    context = span.get_span_context()
    if context is None:
        raise ValueError("span without a context")
    record: Dict[str, Any] = {"trace_id": f"{context.trace_id:032x}",
                              "span_id": f"{context.span_id:016x}"}
    if span.parent is not None:
        record["parent_span_id"] = f"{span.parent.span_id:016x}"
    session_id = _first(attrs, _SESSION)
    if session is not None:
        record.update(config_key=session.config_key, session_id=session.session_id)
        if session.customer_id:
            record["customer_id"] = session.customer_id
    elif session_id is not None:
        record["session_id"] = str(session_id)
    model = _first(attrs, _MODEL)
    operation = attrs.get(attr.OPERATION)
    kind = "llm" if model or _first(attrs, _PROVIDER) else "span"
    if operation == "embeddings":
        kind = "embedding"
    elif operation == "execute_tool":
        kind = "tool"
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    record.update(name=span.name, kind=kind, start_time=iso_time(start), end_time=iso_time(end),
                  duration_ms=(end - start) / 1e6,
                  status="ERROR" if span.status.status_code is StatusCode.ERROR else "OK")
    if record["status"] == "ERROR":
        record["error_message"] = _error(span, capture)
    if model:
        record["model"] = str(model)
    prompt, completion = _first(attrs, _INPUT_TOKENS), _first(attrs, _OUTPUT_TOKENS)
    total = _first(attrs, _TOTAL_TOKENS)
    if total is None and prompt is not None and completion is not None:
        total = int(prompt) + int(completion)
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion),
                        ("total_tokens", total)):
        if value is not None:
            record[name] = int(value)
    ttft = _first(attrs, _TTFT_MS)
    if ttft is None and _first(attrs, _TTFT_S) is not None:
        ttft = float(_first(attrs, _TTFT_S)) * 1000
    if ttft is not None:
        record["time_to_first_token_ms"] = float(ttft)
        record["is_streaming"] = True
    if capture:
        _content(record, attrs)
    provider = _first(attrs, _PROVIDER)
    if provider is not None:
        attrs[attr.PROVIDER] = provider
    dropped = _content_keys(attrs)
    rest = {k: _json(v) for k, v in attrs.items() if k not in dropped}
    if rest:
        record["attributes"] = rest
    return record


def _content(record: Dict[str, Any], attrs: Mapping[str, Any]) -> None:
    for names, field in ((_INPUT, "input"), (_OUTPUT, "output")):
        value = _first(attrs, names)
        if value is not None:
            record[field] = _json(value)
    for prefix, field in _INDEXED:
        if field not in record:
            messages = _indexed(attrs, prefix)
            if messages is not None:
                record[field] = messages


class FallomExporter(SpanExporter):
    """An OpenTelemetry ``SpanExporter`` that delivers into fallom.

    ``FallomExporter(session=session.get_context())`` stamps every span with
    that session; without one, a ``gen_ai.conversation.id`` / ``session.id``
    attribute or the session active where the span is exported is used.
    Records go through ``init(redact=...)`` and respect ``capture_content``.
    """

    def __init__(self, session: Optional[SessionContext] = None) -> None:
        self.session = session

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            redact = STATE.settings.redact
            active = self.session or CURRENT_SESSION.get()
            for span in spans:
                record: Optional[Dict[str, Any]] = to_record(span, active, STATE.capture)
                if redact is not None and record is not None:
                    record = _apply_redact(redact, record)
                if record is None:
                    continue
                parent = span.parent.span_id if span.parent is not None else None
                foreign = ForeignSpan(record, int(record["trace_id"], 16), parent)
                for processor in STATE.all_processors():
                    if not getattr(processor, "skips_foreign", False):
                        processor.on_end(foreign)
        except Exception as exc:
            report_internal_error(exc, "FallomExporter.export")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        from ._sdk import flush

        return flush(timeout_millis / 1000)
