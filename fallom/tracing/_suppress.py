"""fallom's own background work is never traced, by fallom or by OpenTelemetry.

Each fallom thread (export, HTTP helpers, fetches, reports) marks its context
suppressed: fallom's wrappers then record nothing there, and where
OpenTelemetry is loaded its suppression key is set too, so an instrumented
``requests`` does not turn fallom's own POSTs into spans that
``FallomExporter`` would export again, without end.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

__all__ = ["SUPPRESSED", "suppress_here"]

SUPPRESSED: ContextVar[bool] = ContextVar("fallom_suppressed", default=False)
_OTEL_DONE: ContextVar[bool] = ContextVar("fallom_otel_suppressed", default=False)


def suppress_here() -> None:
    """Suppress tracing in the current context (a fallom thread); cheap to repeat.

    OpenTelemetry may be imported after the thread started: each call checks.
    """
    if not SUPPRESSED.get():
        SUPPRESSED.set(True)
    if not _OTEL_DONE.get() and "opentelemetry.context" in sys.modules:
        try:
            from opentelemetry import context
            from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
        except ImportError:  # pragma: no cover - an OpenTelemetry without the key
            _OTEL_DONE.set(True)
            return
        context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        _OTEL_DONE.set(True)
