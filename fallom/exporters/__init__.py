"""The export pipeline, in one place: processors, exporters and what they report.

Finished spans go to processors (``BatchProcessor`` on a background thread,
``SimpleProcessor`` for tests, ``ConsoleProcessor`` for debug mode), which
hand records to exporters: the Fallom HTTP endpoint (``_http``), OTLP
(``_otlp``), in memory, or your own. An exporter is any object with
``export(records)`` returning True when delivered, or an ``ExportResult``
saying what became of each record; pass it to ``fallom.init(exporters=[...])``.
What cannot be sent now is dropped and counted, or spooled to disk
(``_fallback``). It may import ``fallom.console``, ``fallom.tracing``,
``fallom.protocol`` and ``fallom.infra``. See docs/design.md §5.
"""

from fallom.exporters._base import BaseExporter, Exporter, ExportResult, Record
from fallom.exporters._batch import BatchProcessor
from fallom.exporters._simple import InMemoryExporter, SimpleProcessor
from fallom.infra._counters import DROP_REASONS, Stats
from fallom.tracing._processor import SpanProcessor

__all__ = [
    "BaseExporter",
    "BatchProcessor",
    "DROP_REASONS",
    "ExportResult",
    "Exporter",
    "InMemoryExporter",
    "Record",
    "SimpleProcessor",
    "SpanProcessor",
    "Stats",
]
