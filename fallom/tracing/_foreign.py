"""Records made elsewhere, handed to the runtime's processors as if they were spans.

Two producers: OpenTelemetry SDK spans (``FallomExporter``) and records built by hand
(0.2.x's ``fallom.trace.send_trace``). Both go through ``init(redact=...)`` and reach
every processor that takes foreign spans (the OTLP exporter does not: it would send an
OpenTelemetry span back where it came from).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from fallom.infra._counters import Stats
from fallom.tracing._record import _apply_redact
from fallom.tracing._runtime import Runtime

__all__ = ["FOREIGN", "ForeignSpan", "hand_on"]

FOREIGN = Stats()  # foreign records that could not be handed on, over the life of the process


class ForeignSpan:
    """A finished record from elsewhere, shaped for fallom's processors."""

    __slots__ = ("_parent_id", "_record", "_trace_id", "sampled")
    foreign = True
    _cut = False

    def __init__(self, record: Dict[str, Any], trace_id: int, parent_id: Optional[int]) -> None:
        self._record, self._trace_id, self._parent_id = record, trace_id, parent_id
        self.sampled = True


def hand_on(record: Dict[str, Any], rt: Runtime, trace_id: int,
            parent_id: Optional[int]) -> None:
    """``record`` through ``rt``'s redact hook to its processors; dropped and counted
    (``redacted``) when the hook returns None. ``trace_id`` and ``parent_id`` are
    numbers, for the processors that group by trace."""
    redact = rt.settings.redact
    kept: Optional[Dict[str, Any]] = record if redact is None else _apply_redact(redact, record)
    if kept is None:
        FOREIGN.drop("redacted")
        return
    foreign: Any = ForeignSpan(kept, trace_id, parent_id)
    for processor in rt.ending:
        if not processor.skips_foreign:
            processor.on_end(foreign)
