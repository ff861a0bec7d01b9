"""``init(otel_context=True)``: one context for fallom and OpenTelemetry spans.

Each fallom span, while current, is also entered into OpenTelemetry's
context as a non-recording span with the same ids, so OTel spans started
inside it take it as parent; and a fallom span started under an active OTel
span joins that span's trace, with it as parent.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from fallom.tracing import _runtime
from fallom.tracing._context import CURRENT_SPAN

__all__ = ["ACTIVATE", "REPARENT", "deactivate_pair"]

_MASK = 0xFFFFFFFFFFFFFFFF


def _activate(span: Any) -> Tuple[Any, Any]:
    token = CURRENT_SPAN.set(span)
    ctx = SpanContext(span._trace_id, span._span_id, is_remote=False,
                      trace_flags=TraceFlags(TraceFlags.SAMPLED if span.sampled else 0))
    return token, otel_context.attach(trace.set_span_in_context(NonRecordingSpan(ctx)))


def deactivate_pair(tokens: Tuple[Any, Any]) -> None:
    token, otel_token = tokens
    try:
        otel_context.detach(otel_token)
    finally:
        CURRENT_SPAN.reset(token)


def _reparent(span: Any, parent: Optional[Any]) -> None:
    """Put ``span`` under the innermost OpenTelemetry span, when that is not ours."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or (parent is not None and ctx.span_id == parent._span_id):
        return
    span._trace_id, span._parent_id = ctx.trace_id, ctx.span_id
    if parent is not None and parent._trace_id == ctx.trace_id:
        span.sampled = parent.sampled
    else:
        span.sampled = (ctx.trace_id & _MASK) < _runtime.STATE.sample_threshold


ACTIVATE = _activate  # the runtime's activate with otel_context=True
REPARENT = _reparent  # and its otel_parent
