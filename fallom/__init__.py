"""fallom: trace, A/B test and manage prompts for LLM applications.

Everything here is safe on your code's path: it never raises into it, never
waits on the network, and costs microseconds per traced call.
"""

from fallom import evals, extractors, models, prompts, trace
from fallom._sdk import flush, init, shutdown, stats
from fallom._session import FallomSession, session
from fallom._version import __version__
from fallom.tracing._api import current_span, span, trace_llm
from fallom.tracing._session import SessionContext
from fallom.tracing._span import NoOpSpan, Span
from fallom.tracing._threads import bind_context

__all__ = [
    "FallomExporter",
    "FallomSession",
    "NoOpSpan",
    "SessionContext",
    "Span",
    "__version__",
    "bind_context",
    "current_span",
    "evals",
    "extractors",
    "flush",
    "init",
    "models",
    "prompts",
    "session",
    "shutdown",
    "span",
    "stats",
    "trace",
    "trace_llm",
]

for _name in __all__:  # as httpx does: fallom.Span, not fallom.tracing._span.Span
    _public = globals().get(_name)
    if callable(_public):
        _public.__module__ = "fallom"
del _name, _public


def __getattr__(name: str) -> object:
    """``FallomExporter`` imports OpenTelemetry, so only when asked for."""
    if name == "FallomExporter":
        try:
            from fallom.integrations._otel_in import FallomExporter
        except ImportError as exc:
            from fallom.infra._config import OTEL_EXTRA

            raise ImportError(f"FallomExporter needs {OTEL_EXTRA}") from exc
        FallomExporter.__module__ = "fallom"
        return FallomExporter
    raise AttributeError(f"module 'fallom' has no attribute {name!r}")
