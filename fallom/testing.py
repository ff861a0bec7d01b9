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
        """The one record called ``name``; fails loudly when there is not exactly one.

        Args:
            name: the span's name.

        Returns:
            The record, a dict in the wire format.

        Raises:
            AssertionError: no record, or several, are called ``name`` (the message
                says how many), so a test fails with the reason.
        """
        found = [r for r in self if r.get("name") == name]
        if len(found) != 1:
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def names(self) -> List[str]:
        """The records' names, in the order their spans ended.

        Returns:
            One name per record ("" for a record without one).
        """
        return [r.get("name", "") for r in self]

    def view(self, name: str) -> RecordView:
        """The one record called ``name``, read: ``.total_tokens``, ``.input``, ``.output``.

        Args:
            name: the span's name.

        Returns:
            A :class:`RecordView` of the record.

        Raises:
            AssertionError: there is not exactly one record called ``name``.
        """
        return RecordView(self.by_name(name))


def view(record: Dict[str, Any]) -> RecordView:
    """Read a record: tokens, model, input and output, wherever the wire format keeps them.

    Records carry tokens and content inside ``attributes`` as ``fallom.raw.*``
    JSON strings (the format every Fallom SDK sends); this parses them.

    Args:
        record: one record, as :func:`capture_spans` or an exporter got it.

    Returns:
        A :class:`RecordView`; its properties parse lazily and read None for what
        the record lacks.

    Raises:
        AttributeError: ``record`` is not a mapping.
    """
    return RecordView(record)


class _ListExporter(InMemoryExporter):
    def __init__(self, target: CapturedSpans) -> None:
        super().__init__()
        self.records = target


@contextlib.contextmanager
def capture_spans() -> Iterator[CapturedSpans]:
    """Collect every record finished inside the block, synchronously.

    Works with or without ``init()``, beside the exporters it set up (which still
    get every span); a test needs no network and no flush. Spans sampled out or
    started with tracing off are not recorded, so not collected.

    Yields:
        A :class:`CapturedSpans` list that grows as spans end; it keeps its records
        after the block.
    """
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

    Args:
        timeout: seconds to deliver what is queued before it is given up (default 2).
    """
    from fallom._sdk import reset as _reset

    _reset(timeout)


@contextlib.contextmanager
def deterministic(start_ns: int = 1_700_000_000_000_000_000,
                  step_ns: int = 1_000_000) -> Iterator[None]:
    """Sequential ids (1, 2, ...) and clocks that advance ``step_ns`` per reading.

    The wall clock is read once per trace, when its root starts; the spans
    inside are placed from there by the monotonic clock, as durations are, so
    start times are distinct and ordered. Leaving the block restores random ids
    and the real clocks.

    Args:
        start_ns: the first wall-clock reading, in ns since the epoch (default:
            November 2023).
        step_ns: how far each clock reading advances, in ns (default 1 ms).

    Yields:
        None: the block runs with the repeatable ids and clocks.
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
