"""Debug mode: print each trace as a tree when its root span ends.

Spans are buffered per trace so concurrent traces never interleave; a trace
whose root never ended is printed at shutdown, marked unfinished.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

from rich.console import Console

from fallom.console import make_console, print_traces
from fallom.infra._fork import register
from fallom.infra._guard import report_internal_error
from fallom.tracing._processor import SpanProcessor
from fallom.tracing._record import build_record
from fallom.tracing._span import Span

__all__ = ["ConsoleProcessor"]

_MAX_BUFFERED_TRACES = 1_000


class ConsoleProcessor(SpanProcessor):
    """Buffers records by trace and prints a trace when its root ends."""

    def __init__(self, console: Optional[Console] = None) -> None:
        self.console = console or make_console()
        self._lock = threading.Lock()
        self._pending: Dict[int, List[Dict[str, Any]]] = {}
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def on_end(self, span: Span) -> None:
        try:
            record = build_record(span)
            if record is None:
                return
            with self._lock:
                buffered = self._pending.setdefault(span._trace_id, [])
                buffered.append(record)
                if span._parent_id is not None:
                    if len(self._pending) > _MAX_BUFFERED_TRACES:  # roots that never end
                        self._pending.pop(next(iter(self._pending)))
                    return
                del self._pending[span._trace_id]
            # rich writes each printed tree in one piece, so traces never interleave
            print_traces(buffered, self.console)
        except Exception as exc:
            report_internal_error(exc, "debug console")

    def shutdown(self, timeout: float) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for records in pending.values():
            print_traces(records, self.console, unfinished=True)
