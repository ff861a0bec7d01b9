"""Figures of LLM calls per 1, 5 and 30 minutes and 3 hours, kept by ingest, so the
overview reads a few thousand rows at most, not every span of the week.

A row per (grain, start, model, config key): calls, errors, input/output/total tokens,
and a fixed log-scale histogram of the calls' durations. Ingest adds the spans it
inserted (a span sent again is not counted again) in its own transaction, as an upsert
that adds, so replicas writing the same minute add up; retention subtracts what it
deletes. A call is a span with a model, or of kind "llm"; one without a start time is
in no minute and not counted.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import BigInteger, Column, Connection, MetaData, Table, Text, delete, or_, select

from fallom.protocol._wire import RecordView
from fallom.server._tables import chunks, index_key, insert, spans

__all__ = ["BUCKETS", "FIGURES", "GRAINS", "add", "key_text", "percentile", "rebuild", "remove",
           "rollups"]

# seconds: the overview reads the longest that divides its points (one of views._STEPS),
# so a range of 1 hour to 30 days reads at most ~240 rows per model and config key
GRAINS = (60, 300, 1800, 10800)
_PER_DECADE = 10  # histogram buckets per factor of 10: each bucket is 10**0.1 = 1.259x wide
_DECADES = 6  # 1 ms to 1,000 s; below and above each have a bucket of their own
BUCKETS = _PER_DECADE * _DECADES + 2
_HISTOGRAM = tuple(f"h{i}" for i in range(BUCKETS))
FIGURES = ("calls", "errors", "input_tokens", "output_tokens", "total_tokens", *_HISTOGRAM)
_KEY = ("grain", "start_s", "model", "config_key")

_meta = MetaData()
rollups = Table("rollups", _meta,
                Column("grain", BigInteger, primary_key=True),
                Column("start_s", BigInteger, primary_key=True),  # Unix seconds, UTC
                Column("model", Text, primary_key=True),  # "" for none
                Column("config_key", Text, primary_key=True),
                *(Column(name, BigInteger, nullable=False) for name in FIGURES),
                sqlite_with_rowid=False)  # a range of the key is read in place

Key = Tuple[int, int, str, str]


def bucket_of(duration_ms: float) -> int:
    """The histogram bucket of a duration: 0 below 1 ms, the last from 1,000 s on."""
    if duration_ms < 1:
        return 0
    return min(BUCKETS - 1, 1 + int(math.log10(duration_ms) * _PER_DECADE))


def percentile(histogram: Sequence[int], q: float) -> Optional[float]:
    """The nearest-rank ``q`` percentile of a histogram, as the geometric middle of its
    bucket: within 12.2 % (10**0.05 - 1) of the true value between 1 ms and 1,000 s;
    below 1 ms it says 0.5, from 1,000 s on 1,000,000 (at least that)."""
    count = sum(histogram)
    if count <= 0:
        return None
    rank, seen = max(1, math.ceil(count * q)), 0
    for index, found in enumerate(histogram):
        seen += found
        if seen >= rank:
            if index == 0:
                return 0.5
            if index == BUCKETS - 1:
                return float(10 ** _DECADES)
            return round(10 ** ((index - 0.5) / _PER_DECADE), 1)
    return None  # not reached: seen ends at count


def _epoch(start: Optional[str]) -> Optional[int]:
    """A start time (ISO 8601, UTC when it names no offset) in Unix seconds; None if unread."""
    if not start:
        return None
    text = start.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def key_text(value: Optional[str]) -> str:
    """A model or config key as the rollup's key holds it (bounded, no NUL; "" for none)."""
    return "" if value is None else index_key(value).replace("\x00", "\ufffd")


def _figures(span: Mapping[str, Any]) -> Optional[Tuple[int, str, str, List[int]]]:
    """(start, model, config key, figures) of an LLM call; None for any other span."""
    if span.get("model") is None and span.get("kind") != "llm":
        return None
    start = _epoch(span.get("start_time"))
    if start is None:
        return None
    usage = RecordView(json.loads(span["record"])).usage
    figures = [0] * len(FIGURES)
    figures[0], figures[1] = 1, int(span.get("status") == "ERROR")
    figures[2:5] = [value or 0 for value in usage]
    duration = span.get("duration_ms")
    if duration is not None:
        figures[5 + bucket_of(float(duration))] = 1
    return start, key_text(span.get("model")), key_text(span.get("config_key")), figures


def _summed(span_rows: Iterable[Mapping[str, Any]], sign: int) -> Dict[Key, List[int]]:
    """The spans' figures added up per rollup row, times ``sign``."""
    sums: Dict[Key, List[int]] = {}
    for row in span_rows:
        found = _figures(row)
        if found is None:
            continue
        start, model, config, figures = found
        for grain in GRAINS:
            total = sums.setdefault((grain, start - start % grain, model, config),
                                    [0] * len(FIGURES))
            for index, value in enumerate(figures):
                total[index] += sign * value
    return sums


def _apply(connection: Connection, sums: Dict[Key, List[int]]) -> None:
    """Add ``sums`` into the rows (made when absent), in key order: replicas adding to the
    same rows lock them in one order. Rows left with no call are deleted."""
    if not sums:
        return
    statement = insert(connection, rollups)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={name: rollups.c[name] + statement.excluded[name] for name in FIGURES})
    connection.execute(statement, [{**dict(zip(_KEY, key)), **dict(zip(FIGURES, sums[key]))}
                                   for key in sorted(sums)])
    taken = [key for key, figures in sums.items() if figures[0] < 0]
    for grain in GRAINS:  # rows emptied by retention, looked for where it took calls out
        starts = [start for g, start, _, _ in taken if g == grain]
        if starts:
            connection.execute(delete(rollups).where(
                rollups.c.grain == grain, rollups.c.start_s.between(min(starts), max(starts)),
                rollups.c.calls <= 0))


def add(connection: Connection, span_rows: Sequence[Mapping[str, Any]]) -> None:
    """Count spans just inserted (rows as ingest writes them) into the rollups."""
    _apply(connection, _summed(span_rows, 1))


_READ = (spans.c.start_time, spans.c.duration_ms, spans.c.model, spans.c.kind,
         spans.c.config_key, spans.c.status, spans.c.record)
_CALLS = or_(spans.c.model.is_not(None), spans.c.kind == "llm")


def remove(connection: Connection, trace_ids: Sequence[str]) -> None:
    """Take the calls of these traces (about to be deleted) out of the rollups."""
    for part in chunks(list(trace_ids)):
        found = connection.execute(select(*_READ).where(spans.c.trace_id.in_(part), _CALLS))
        _apply(connection, _summed((dict(row._mapping) for row in found), -1))


def rebuild(connection: Connection) -> None:
    """Make every rollup again from the stored spans (revision 0004 does, once)."""
    connection.execute(delete(rollups))
    result = connection.execute(select(*_READ).where(_CALLS)  # streamed, 2,000 at a time
                                .execution_options(yield_per=2000))
    for part in result.partitions():
        _apply(connection, _summed((dict(row._mapping) for row in part), 1))
