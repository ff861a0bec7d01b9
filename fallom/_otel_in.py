"""``FallomExporter``: spans from OpenTelemetry-instrumented code, as fallom records.

Agent frameworks and instrumentations (opentelemetry-instrumentation-openai,
OpenLLMetry, the OpenAI Agents SDK, Pydantic AI, LlamaIndex) describe LLM
calls with GenAI semantic-convention attributes; this exporter maps the
current names and the common older ones onto the fallom record and hands the
records to fallom's own delivery pipeline.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from . import _genai, _state
from ._context import CURRENT_SESSION
from ._genai import SpanData
from ._guard import report_internal_error
from ._record import _apply_redact
from ._session import SessionContext
from .exporters._base import Stats

__all__ = ["FallomExporter", "ForeignSpan"]

FOREIGN = Stats()  # spans FallomExporter could not hand on, over the life of the process


class ForeignSpan:
    """A finished record from elsewhere, shaped for fallom's processors."""

    __slots__ = ("_parent_id", "_record", "_trace_id", "sampled")
    foreign = True
    _cut = False

    def __init__(self, record: Dict[str, Any], trace_id: int, parent_id: Optional[int]) -> None:
        self._record, self._trace_id, self._parent_id = record, trace_id, parent_id
        self.sampled = True


def to_record(span: ReadableSpan, session: Optional[SessionContext],
              capture: bool) -> Dict[str, Any]:
    """One OpenTelemetry SDK span as a v2 fallom wire record."""
    context = span.get_span_context()
    if context is None:
        raise ValueError("span without a context")
    start = span.start_time or 0
    data = SpanData(
        name=span.name, trace_id=context.trace_id, span_id=context.span_id,
        parent_id=span.parent.span_id if span.parent is not None else None,
        start_ns=start, end_ns=span.end_time or start,
        error=span.status.status_code is StatusCode.ERROR,
        status_message=span.status.description, attributes=dict(span.attributes or {}),
        events=[(event.name, event.attributes or {}) for event in span.events])
    return _genai.to_record(data, session, capture, _state.STATE.settings.config_key)


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
            redact = _state.STATE.settings.redact
            active = self.session or CURRENT_SESSION.get()
            for span in spans:
                if not _state.STATE.initialized and not _state.STATE.test_processors:
                    FOREIGN.drop("shutdown")  # fallom was shut down (or never started)
                    continue
                record: Optional[Dict[str, Any]] = to_record(span, active, _state.STATE.capture)
                if redact is not None and record is not None:
                    record = _apply_redact(redact, record)
                if record is None:
                    FOREIGN.drop("redacted")
                    continue
                parent = span.parent.span_id if span.parent is not None else None
                foreign = ForeignSpan(record, int(record["trace_id"], 16), parent)
                processor: Any
                for processor in _state.STATE.all_processors():
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
