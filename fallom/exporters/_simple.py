"""Synchronous delivery for the test kit and the in-memory exporter."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

from fallom.exporters._base import BaseExporter, Record, as_exporter, count_result
from fallom.infra._counters import Stats
from fallom.infra._fork import register
from fallom.infra._guard import report_internal_error
from fallom.tracing._processor import SpanProcessor
from fallom.tracing._record import build_record
from fallom.tracing._span import Span

__all__ = ["InMemoryExporter", "SimpleProcessor"]


class InMemoryExporter(BaseExporter):
    """Keeps every record it is given, in order, in ``records``.

    For tests and debugging: pass it to ``fallom.init(exporters=[...])`` and read
    ``records`` after ``fallom.flush()``. Thread-safe; it never forgets on its own.
    """

    def __init__(self) -> None:
        self.records: List[Record] = []
        self._lock = threading.Lock()
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def export(self, records: List[Record]) -> bool:
        """Append ``records`` to :attr:`records`.

        Args:
            records: the wire records of one batch.

        Returns:
            True: always delivered.
        """
        with self._lock:
            self.records.extend(records)
        return True

    def clear(self) -> None:
        """Forget every record kept so far, between tests for instance."""
        with self._lock:
            self.records.clear()


class SimpleProcessor(SpanProcessor):
    """Converts and exports each span on the thread that ended it (tests only).

    Nothing is queued, so nothing needs a flush; the span's caller waits for the
    export, which is why only tests should use it.

    Args:
        exporter: any object with ``export(records)`` (see ``fallom.exporters``).
    """

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self._out = as_exporter(exporter)
        self.counters = Stats()

    def on_end(self, span: Span) -> None:
        """Build ``span``'s record and export it now, counting the outcome.

        Args:
            span: a span that just ended.

        Never raises: a failure (the exporter's too) is logged once and the record
        is lost.
        """
        try:
            record = build_record(span)
            if record is None:
                self.counters.drop("redacted")
                return
            count_result(self.counters, self._out.export([record]), 1)
        except Exception as exc:
            report_internal_error(exc, "SimpleProcessor.on_end")

    def stats(self) -> Dict[str, Any]:
        """What became of the spans handed to it, as :func:`fallom.stats` merges them.

        Returns:
            ``sent``, ``retried``, ``batches``, ``cut``, ``spooled``, ``replayed`` and
            ``dropped`` (a count per reason).
        """
        return self.counters.snapshot()
