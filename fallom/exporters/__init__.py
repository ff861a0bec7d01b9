"""The export pipeline, in one place: processors, exporters and what they report.

Finished spans go to processors (``BatchProcessor`` on a background thread,
``SimpleProcessor`` for tests, ``ConsoleProcessor`` for debug mode), which
hand records to exporters: the Fallom HTTP endpoint (``_http``), OTLP
(``_otlp``), in memory, or your own. An exporter is any object with
``export(records)`` returning True when delivered, or an ``ExportResult``
saying what became of each record; pass it to ``fallom.init(exporters=[...])``.
"""

from fallom.exporters._base import (
    DROP_REASONS,
    Exporter,
    ExportResult,
    Record,
    SpanProcessor,
    Stats,
)
from fallom.exporters._batch import BatchProcessor
from fallom.exporters._simple import InMemoryExporter, SimpleProcessor

__all__ = [
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
