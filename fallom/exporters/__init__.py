"""Where finished records go: in memory, the Fallom HTTP endpoint, or your own.

An exporter is any object with ``export(records) -> bool``; pass it to
``fallom.init(exporters=[...])`` and it is fed in batches from a background
thread, like the built-in ones.
"""

from ._base import DROP_REASONS, Exporter, Record, Stats
from ._batch import BatchProcessor
from ._simple import InMemoryExporter, SimpleProcessor

__all__ = [
    "BatchProcessor",
    "DROP_REASONS",
    "Exporter",
    "InMemoryExporter",
    "Record",
    "SimpleProcessor",
    "Stats",
]
