"""The interface a finished span is handed to: what the runtime holds.

The runtime keeps its processors by this interface, so tracing never imports the
exporters that implement it (``fallom.exporters``, the test kit, the console).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from fallom.tracing._span import Span

__all__ = ["SpanProcessor"]


class SpanProcessor:
    """Receives each finished span on the thread that ended it; must be cheap."""

    skips_foreign = False  # True: spans from FallomExporter are not handed to it

    def on_end(self, span: Span) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> None:
        return None

    def stats(self) -> Mapping[str, Any]:
        """Delivery counters, as :func:`fallom.stats` merges them; none by default."""
        return {}
