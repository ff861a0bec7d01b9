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
    """Keeps every record it is given, in order, in ``records``."""

    def __init__(self) -> None:
        self.records: List[Record] = []
        self._lock = threading.Lock()
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def export(self, records: List[Record]) -> bool:
        with self._lock:
            self.records.extend(records)
        return True

    def clear(self) -> None:
        with self._lock:
            self.records.clear()


class SimpleProcessor(SpanProcessor):
    """Converts and exports each span on the thread that ended it (tests only)."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self._out = as_exporter(exporter)
        self.counters = Stats()

    def on_end(self, span: Span) -> None:
        try:
            record = build_record(span)
            if record is None:
                self.counters.drop("redacted")
                return
            count_result(self.counters, self._out.export([record]), 1)
        except Exception as exc:
            report_internal_error(exc, "SimpleProcessor.on_end")

    def stats(self) -> Dict[str, Any]:
        return self.counters.snapshot()
