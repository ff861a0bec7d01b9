"""The runtime: everything one ``init()`` configured, in one immutable object.

``init()``, ``shutdown()``, the test kit and ``otel_context`` build a new
:class:`Runtime` and swap it in with one assignment (:func:`swap`); readers
take ``_state.STATE`` once and use that object throughout, so no reader ever
sees half of one configuration and half of another. The hot path reads the
derived fields (``active``, ``capture``, ``limits``, ...) directly. A span keeps
the runtime it started in, so its record is built, redacted and handed on as that
``init()`` said, whatever came after (only the test kit's processors are read live).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Tuple

from fallom.infra._config import Settings
from fallom.infra._fork import at_fork
from fallom.protocol._capture import Limits
from fallom.tracing import _context
from fallom.tracing._context import CURRENT_SPAN
from fallom.tracing._processor import SpanProcessor

__all__ = ["ACTIVE_FLAG", "STATE", "Runtime", "swap"]


class Runtime:
    """One configuration: settings, what they imply, and where spans go. Never mutated."""

    __slots__ = ("activate", "active", "capture", "ending", "experiments", "initialized",
                 "limits", "otel_parent", "processors", "sample_threshold", "settings",
                 "test_processors")

    settings: Settings
    initialized: bool
    processors: Tuple[SpanProcessor, ...]
    test_processors: Tuple[SpanProcessor, ...]
    otel_parent: Optional[Callable[[Any, Any], None]]  # set by init(otel_context=True)
    activate: Callable[[Any], Any]  # makes a span current; its token says how to undo it
    experiments: Any  # the configs and prompts stores and their fetcher, or None
    ending: Tuple[SpanProcessor, ...]  # what a finished span is handed to
    active: bool  # are spans recorded at all
    capture: bool
    limits: Limits
    sample_threshold: int

    def __init__(self, settings: Optional[Settings] = None, *, initialized: bool = False,
                 processors: Tuple[SpanProcessor, ...] = (),
                 test_processors: Tuple[SpanProcessor, ...] = (),
                 otel_parent: Optional[Callable[[Any, Any], None]] = None,
                 activate: Callable[[Any], Any] = CURRENT_SPAN.set,
                 experiments: Any = None) -> None:
        settings = settings or Settings()
        fields = {
            "settings": settings, "initialized": initialized, "processors": processors,
            "test_processors": test_processors, "otel_parent": otel_parent,
            "activate": activate, "experiments": experiments,
            "ending": processors + test_processors,  # every processor, in one tuple
            "active": (settings.tracing and initialized) or bool(test_processors),
            "capture": settings.capture_content,
            "limits": Limits(settings.capture_max_chars, settings.capture_max_items,
                             settings.capture_max_depth),
            "sample_threshold": int(settings.sample_rate * (1 << 64)),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Runtime is immutable: build a new one and swap it in")

    def replace(self, **changes: Any) -> Runtime:
        """A copy with ``changes`` (``settings``, ``initialized``, ``processors``, ...)."""
        fields = {"settings": self.settings, "initialized": self.initialized,
                  "processors": self.processors, "test_processors": self.test_processors,
                  "otel_parent": self.otel_parent, "activate": self.activate,
                  "experiments": self.experiments}
        fields.update(changes)
        return Runtime(fields.pop("settings"), **fields)

    def all_processors(self) -> Tuple[SpanProcessor, ...]:
        return self.ending

    def flush(self, timeout: float) -> bool:
        """Every processor delivers what it holds; True when all of it went in ``timeout``."""
        deadline = time.monotonic() + timeout
        ok = True
        for processor in self.ending:
            ok = processor.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return ok


STATE = Runtime()
# Non-empty while spans are recorded: wrapt's ``enabled=`` takes its C ``__len__``,
# so an untraced call costs one C call and no Python frame.
ACTIVE_FLAG: list[bool] = []
_swap_lock = threading.Lock()


def swap(change: Callable[[Runtime], Runtime]) -> Runtime:
    """Replace the runtime with ``change(current)``, atomically; returns the old one."""
    global STATE
    with _swap_lock:
        old = STATE
        STATE = change(old)
        ACTIVE_FLAG[:] = [True] if STATE.active else []
        _context.activate = STATE.activate
    return old


@at_fork
def _new_swap_lock() -> None:
    global _swap_lock
    _swap_lock = threading.Lock()
