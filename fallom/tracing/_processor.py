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
        """Take a span that just ended, on the thread that ended it: a subclass writes it.

        Args:
            span: the finished span. An exception raised here is logged, never raised
                to the user's code, and the span goes to no processor after this one.

        Raises:
            NotImplementedError: here; a subclass replaces it.
        """
        raise NotImplementedError

    def force_flush(self, timeout: float) -> bool:
        """Deliver what is held, as :func:`fallom.flush` asks; nothing is held here.

        Args:
            timeout: seconds this processor may take.

        Returns:
            True when everything handed to it so far was delivered; here always True.
        """
        return True

    def shutdown(self, timeout: float) -> None:
        """Deliver what is held, then stop, as :func:`fallom.shutdown` asks; here nothing.

        Args:
            timeout: seconds this processor may take.
        """
        return None

    def stats(self) -> Mapping[str, Any]:
        """Delivery counters, as :func:`fallom.stats` merges them; none by default.

        Returns:
            Counters in :meth:`fallom.exporters.Stats.snapshot`'s shape; here an empty
            mapping.
        """
        return {}
