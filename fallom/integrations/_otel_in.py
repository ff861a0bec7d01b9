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

from fallom.infra._guard import report_internal_error
from fallom.protocol import _genai
from fallom.protocol._genai import SpanData
from fallom.tracing import _runtime
from fallom.tracing._context import CURRENT_SESSION
from fallom.tracing._foreign import FOREIGN, hand_on
from fallom.tracing._runtime import Runtime
from fallom.tracing._session import SessionContext

__all__ = ["FallomExporter"]

def record_from_otel(span: ReadableSpan, session: Optional[SessionContext],
              rt: Runtime) -> Dict[str, Any]:
    """One OpenTelemetry SDK span as a v2 fallom wire record, under runtime ``rt``."""
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
    return _genai.record_from_genai(data, session, rt.capture, rt.settings.config_key, rt.limits)


class FallomExporter(SpanExporter):
    """An OpenTelemetry ``SpanExporter`` that delivers into fallom.

    ``FallomExporter(session=session.get_context())`` stamps every span with
    that session; without one, a ``gen_ai.conversation.id`` / ``session.id``
    attribute or the session active where the span is exported is used.
    Records go through ``init(redact=...)`` and respect ``capture_content``.

    Args:
        session: the session every span is stamped with (``session.get_context()``);
            None: found per span, as above.
    """

    def __init__(self, session: Optional[SessionContext] = None) -> None:
        self.session = session

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Hand each span on to fallom's processors; one that cannot be converted is
        counted (``export_error``), never its batch.

        Args:
            spans: the finished OpenTelemetry spans of one batch.

        Returns:
            ``SUCCESS``, also when fallom is not initialised (the spans are then
            counted as dropped, ``shutdown``); ``FAILURE`` only when fallom's state could
            not be read. Never raises.
        """
        rt = _runtime.STATE  # read once: an init() meanwhile changes nothing in this call
        if not rt.initialized and not rt.test_processors:
            FOREIGN.drop("shutdown", len(spans))  # fallom was shut down (or never started)
            return SpanExportResult.SUCCESS
        try:
            active = self.session or CURRENT_SESSION.get()
        except Exception as exc:
            FOREIGN.drop("export_error", len(spans))
            report_internal_error(exc, "FallomExporter.export")
            return SpanExportResult.FAILURE
        for span in spans:
            try:
                _hand_on(span, active, rt)
            except Exception as exc:
                FOREIGN.drop("export_error")
                report_internal_error(exc, "FallomExporter.export")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Does nothing: ``fallom.shutdown()`` stops fallom's delivery."""
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Deliver what fallom holds, as ``fallom.flush()`` does.

        Args:
            timeout_millis: milliseconds to wait at most, as OpenTelemetry counts.

        Returns:
            True when everything queued before the call was delivered in time.
        """
        return _runtime.STATE.flush(timeout_millis / 1000)


def _hand_on(span: ReadableSpan, session: Optional[SessionContext], rt: Runtime) -> None:
    """One span's record to ``rt``'s processors (see :func:`fallom.tracing._foreign.hand_on`)."""
    record = record_from_otel(span, session, rt)
    parent = span.parent.span_id if span.parent is not None else None
    hand_on(record, rt, int(record["trace_id"], 16), parent)
