"""The SDK's process-wide state, read on every traced call.

A single mutable object rather than module globals so the hot path does one
attribute load per field, and ``init()`` swaps everything in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from ._capture import Limits
from ._config import Settings

if TYPE_CHECKING:
    from ._span import Span

__all__ = ["STATE", "SpanProcessor"]


class SpanProcessor:
    """Receives each finished span on the thread that ended it; must be cheap."""

    skips_foreign = False  # True: spans from FallomExporter are not handed to it

    def on_end(self, span: Span) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> None:
        return None


class _State:
    __slots__ = (
        "active",
        "active_flag",
        "capture",
        "initialized",
        "limits",
        "otel_parent",
        "processors",
        "sample_threshold",
        "settings",
        "test_processors",
    )

    def __init__(self) -> None:
        self.settings = Settings()
        self.initialized = False
        self.active = False
        self.active_flag: list[bool] = []  # non-empty while active; see _instrument
        self.capture = True
        self.limits = Limits()
        self.otel_parent: Optional[Callable[[Any, Any], None]] = None  # otel_context=True
        self.sample_threshold = 1 << 64
        self.processors: Tuple[SpanProcessor, ...] = ()
        self.test_processors: Tuple[SpanProcessor, ...] = ()

    def refresh(self) -> None:
        """Recompute the derived fast-path flags after a change."""
        tracing = self.settings.tracing and self.initialized
        self.active = tracing or bool(self.test_processors)
        self.active_flag[:] = [True] if self.active else []

    def all_processors(self) -> Tuple[Any, ...]:
        return self.processors + self.test_processors


STATE = _State()
