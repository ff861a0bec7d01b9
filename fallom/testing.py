"""A test kit for your own tests: capture fallom's records in memory.

``capture_spans()`` works with or without ``fallom.init()``; the pytest
fixture ``fallom_spans`` (registered through the ``pytest11`` entry point)
wraps it. ``deterministic()`` makes ids and timestamps repeatable.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Dict, Iterator, List

from fallom.exporters._simple import InMemoryExporter, SimpleProcessor
from fallom.protocol._wire import RecordView
from fallom.tracing import _ids, _runtime

__all__ = ["CapturedSpans", "RecordView", "capture_spans", "deterministic", "reset", "view"]


class CapturedSpans(List[Dict[str, Any]]):
    """The finished records, in the order their spans ended."""

    def by_name(self, name: str) -> Dict[str, Any]:
        """The one record called ``name``; fails loudly when there is not exactly one."""
        found = [r for r in self if r.get("name") == name]
        if len(found) != 1:
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def names(self) -> List[str]:
        return [r.get("name", "") for r in self]

    def view(self, name: str) -> RecordView:
        """The one record called ``name``, read: ``.total_tokens``, ``.input``, ``.output``."""
        return RecordView(self.by_name(name))


def view(record: Dict[str, Any]) -> RecordView:
    """Read a record: tokens, model, input and output, wherever the wire format keeps them.

    Records carry tokens and content inside ``attributes`` as ``fallom.raw.*``
    JSON strings (the format every Fallom SDK sends); this parses them.
    """
    return RecordView(record)


class _ListExporter(InMemoryExporter):
    def __init__(self, target: CapturedSpans) -> None:
        super().__init__()
        self.records = target


@contextlib.contextmanager
def capture_spans() -> Iterator[CapturedSpans]:
    """Collect every record finished inside the block, synchronously."""
    records = CapturedSpans()
    processor = SimpleProcessor(_ListExporter(records))
    _runtime.swap(lambda rt: rt.replace(test_processors=(*rt.test_processors, processor)))
    try:
        yield records
    finally:
        _runtime.swap(lambda rt: rt.replace(
            test_processors=tuple(p for p in rt.test_processors if p is not processor)))


def reset(timeout: float = 2.0) -> None:
    """Undo everything fallom was told in a test: for your suite's teardown.

    Shuts fallom down (delivering what is queued within ``timeout``), then
    restores default settings, zero counters, random ids and the real clocks.
    """
    from fallom._sdk import reset as _reset

    _reset(timeout)


@contextlib.contextmanager
def deterministic(start_ns: int = 1_700_000_000_000_000_000,
                  step_ns: int = 1_000_000) -> Iterator[None]:
    """Sequential ids (1, 2, ...) and clocks that advance ``step_ns`` per reading.

    The wall clock is read once per trace, when its root starts; the spans
    inside are placed from there by the monotonic clock, as durations are, so
    start times are distinct and ordered.
    """
    trace_ids, span_ids = itertools.count(1), itertools.count(1)
    ticks, wall_ticks = itertools.count(0), itertools.count(0)
    _ids.ids.trace_id = lambda: next(trace_ids)
    _ids.ids.span_id = lambda: next(span_ids)
    _ids.clock.monotonic_ns = lambda: next(ticks) * step_ns
    _ids.clock.wall_ns = lambda: start_ns + next(wall_ticks) * step_ns
    try:
        yield
    finally:
        _ids.reset()
