"""Spans in, and what the listing and the sessions page read kept with them.

A batch's spans are stored once each by span id; each trace they belong to gets its
summary row (``traces``), its keys (``trace_keys``) and its per-session figures
(``session_parts``). A trace whose root is already known is brought up to date from
the new spans alone; a new trace, or one whose root just came (children take its
session and customer), is made again from all its spans. On PostgreSQL each trace's
advisory lock is held meanwhile, so replicas writing one trace take turns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from sqlalchemy import BigInteger, Connection, cast, delete, func, select, text, update

from fallom.server import _rollups as rollups
from fallom.server._search import index_spans
from fallom.server._tables import (
    chunks,
    index_key,
    insert,
    metrics,
    now,
    session_parts,
    sessions,
    spans,
    trace_keys,
    traces,
)

__all__ = ["UPPER", "add_spans", "ascii_lower", "lock_sessions", "lock_traces",
           "refresh_sessions", "sessions_of", "summarise", "summarise_all"]

_START_CHARS = 64  # ISO 8601 times are at most 35: a longer start is compared by its prefix
_INT64 = 2**63 - 1
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWERING = str.maketrans(UPPER, UPPER.lower())


def ascii_lower(value: str) -> str:
    """ASCII letters in lower case, every other character as it is (SQLite's LIKE folds so)."""
    return value.translate(_LOWERING)


class _Span(NamedTuple):
    """The columns of a span its trace's summary is made of."""

    span_id: str
    trace_id: str
    parent: Optional[str]
    name: str
    session: Optional[str]
    customer: Optional[str]
    config: Optional[str]
    status: Optional[str]
    start: Optional[str]
    duration: Optional[float]
    tokens: Optional[int]
    model: Optional[str]
    error: Optional[str]


_SPAN_COLUMNS = (spans.c.span_id, spans.c.trace_id, spans.c.parent_span_id, spans.c.name,
                 spans.c.session_id, spans.c.customer_id, spans.c.config_key, spans.c.status,
                 spans.c.start_time, spans.c.duration_ms, spans.c.total_tokens, spans.c.model,
                 spans.c.error_message)
_KEYED = (("session", "session"), ("customer", "customer"), ("config", "config"),
          ("model", "model"))


def _span_of(row: Mapping[str, Any]) -> _Span:
    return _Span._make(row[column.name] for column in _SPAN_COLUMNS)


def _largest(values: Iterable[Optional[Any]]) -> Optional[Any]:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _least(values: Iterable[Optional[Any]]) -> Optional[Any]:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _total(values: Iterable[Optional[int]]) -> Optional[int]:
    """A sum of token counts: null when none counted any, at most what BIGINT holds."""
    present = [value for value in values if value is not None]
    return min(sum(present), _INT64) if present else None


def _root_of(members: List[_Span]) -> Optional[_Span]:
    """The trace's root: of several, the first to start."""
    roots = [span for span in members if span.parent is None]
    return min(roots, key=lambda s: (s.start is not None, s.start or "", s.span_id)) \
        if roots else None


# -- inheritance --------------------------------------------------------------------------
Change = Dict[str, Optional[str]]


def _inherit(trace: str, members: List[_Span],
             root: Tuple[Optional[str], Optional[str]]) -> Dict[str, Change]:
    """What each child takes from the trace's root (its session, its customer): per span
    id, the fields to set; ``members`` is updated in place.

    A span whose session was left to default (its trace id, or none) takes the session
    of its trace's root, and one with no customer the root's: OpenTelemetry apps often
    set session.id and user.id on the root span only.
    """
    session, customer = root
    changes: Dict[str, Change] = {}
    for index, span in enumerate(members):
        if span.parent is None:
            continue
        change: Change = {}
        if span.session in (None, trace) and session not in (None, trace):
            change["session_id"] = session
        if span.customer is None and customer is not None:
            change["customer_id"] = customer
        if change:
            changes[span.span_id] = change
            members[index] = span._replace(session=change.get("session_id", span.session),
                                           customer=change.get("customer_id", span.customer))
    return changes


def _set_inherited(connection: Connection, changes: Dict[str, Change]) -> None:
    """Write inherited sessions and customers into the columns and the records alike."""
    for part in chunks(sorted(changes)):
        found = connection.execute(select(spans.c.span_id, spans.c.record)
                                   .where(spans.c.span_id.in_(part))).all()
        for span_id, record in found:
            change = changes[span_id]
            connection.execute(update(spans).where(spans.c.span_id == span_id).values(
                record=json.dumps({**json.loads(record), **change}), **change))


# -- the rows made of spans ---------------------------------------------------------------
def _summary(trace: str, members: List[_Span], at: str) -> Dict[str, Any]:
    """The listing's row of a trace: every figure over all its spans."""
    starts = [span.start for span in members if span.start is not None]
    root = _root_of(members)
    roots = [span for span in members if span.parent is None]
    root_name = _largest(span.name for span in roots)
    return {"trace_id": trace, "start_time": min(starts)[:_START_CHARS] if starts else None,
            "spans": len(members), "total_tokens": _total(span.tokens for span in members),
            "errors": sum(1 for span in members if span.status == "ERROR"),
            "root_name": root_name,
            "root_lower": None if root_name is None else ascii_lower(root_name),
            "root_session": root.session if root else None,
            "root_customer": root.customer if root else None,
            "root_duration_ms": _largest(span.duration for span in roots),
            "duration_ms": _largest(span.duration for span in members),
            "session_id": _largest(span.session for span in members),
            "customer_id": _largest(span.customer for span in members),
            "config_key": _largest(span.config for span in members),
            "models": json.dumps(sorted({s.model for s in members if s.model is not None})),
            "error_message": _largest(span.error for span in members), "updated_at": at}


def _merged(old: Mapping[str, Any], new: List[_Span], at: str) -> Dict[str, Any]:
    """``old`` summary with ``new`` spans (none a root) counted in: as :func:`_summary`
    of all of them would be, without reading the trace's other spans."""
    models = set(json.loads(old["models"])) | {s.model for s in new if s.model is not None}
    return {**old, "start_time": _least([old["start_time"], *(
                span.start[:_START_CHARS] for span in new if span.start is not None)]),
            "spans": old["spans"] + len(new),
            "total_tokens": _total([old["total_tokens"], *(span.tokens for span in new)]),
            "errors": old["errors"] + sum(1 for span in new if span.status == "ERROR"),
            "duration_ms": _largest([old["duration_ms"], *(span.duration for span in new)]),
            "session_id": _largest([old["session_id"], *(span.session for span in new)]),
            "customer_id": _largest([old["customer_id"], *(span.customer for span in new)]),
            "config_key": _largest([old["config_key"], *(span.config for span in new)]),
            "models": json.dumps(sorted(models)),
            "error_message": _largest([old["error_message"], *(span.error for span in new)]),
            "updated_at": at}


def _keys(trace: str, members: List[_Span], start: Optional[str]) -> List[Dict[str, Any]]:
    """The trace's rows of ``trace_keys``: each distinct value of each filtered field."""
    return [{"trace_id": trace, "field": field, "value": value, "start_time": start}
            for field, attribute in _KEYED
            for value in sorted({index_key(getattr(span, attribute)) for span in members
                                 if getattr(span, attribute) is not None})]


def _session_parts(trace: str, members: List[_Span]) -> List[Dict[str, Any]]:
    """The trace's figures per session it has (not the trace's own id, which a trace
    outside any session carries)."""
    by_session: Dict[str, List[_Span]] = {}
    for span in members:
        if span.session is not None and span.session != trace:
            by_session.setdefault(span.session, []).append(span)
    return [{"session_key": index_key(session), "trace_id": trace, "session_id": session,
             "customer_id": _largest(span.customer for span in group),
             "config_key": _largest(span.config for span in group), "spans": len(group),
             "total_tokens": _total(span.tokens for span in group),
             "errors": sum(1 for span in group if span.status == "ERROR"),
             "first_start": _least(span.start for span in group),
             "last_start": _largest(span.start for span in group)}
            for session, group in sorted(by_session.items())]


def _added(old: Mapping[str, Any], new: Mapping[str, Any]) -> Dict[str, Any]:
    """Two parts of one session in one trace as one."""
    return {**old, "customer_id": _largest([old["customer_id"], new["customer_id"]]),
            "config_key": _largest([old["config_key"], new["config_key"]]),
            "spans": old["spans"] + new["spans"],
            "total_tokens": _total([old["total_tokens"], new["total_tokens"]]),
            "errors": old["errors"] + new["errors"],
            "first_start": _least([old["first_start"], new["first_start"]]),
            "last_start": _largest([old["last_start"], new["last_start"]])}


def _upsert(connection: Connection, table: Any, rows: List[Dict[str, Any]],
            key: Sequence[str]) -> None:
    """Insert ``rows``, or replace each row of the same key."""
    if rows:
        statement = insert(connection, table)
        connection.execute(statement.on_conflict_do_update(
            index_elements=list(key), set_={c.name: statement.excluded[c.name]
                                            for c in table.c if c.name not in key}), rows)


# -- keeping them -------------------------------------------------------------------------
def add_spans(connection: Connection, rows: List[Dict[str, Any]]) -> int:
    """Store span rows (one per span id, sorted by it), each once, and bring their traces'
    rows up to date; in the caller's transaction. Returns how many were new.

    Under the traces' locks: the summaries and the span ids already stored are read
    first, so children take a known root's session before they are written, and a trace
    new to the store is summarised from the batch without reading it back.
    """
    lock_traces(connection, [row["trace_id"] for row in rows])
    known = _known(connection, sorted({row["trace_id"] for row in rows}))
    present = _present(connection, [row["span_id"] for row in rows])
    new = [row for row in rows if row["span_id"] not in present]
    by_trace: Dict[str, List[Dict[str, Any]]] = {}
    for row in new:
        by_trace.setdefault(row["trace_id"], []).append(row)
    again, fresh = [], {}
    for trace, trace_rows in by_trace.items():
        members = [_span_of(row) for row in trace_rows]
        old = known.get(trace)
        if old is not None and any(span.parent is None for span in members):
            again.append(trace)  # a root for stored children: made again once written
            continue
        root = _root_of(members) if old is None else None
        inherited = (old["root_session"], old["root_customer"]) if old is not None else \
            (root.session, root.customer) if root is not None else (None, None)
        _inherited_rows(trace_rows, _inherit(trace, members, inherited))
        fresh[trace] = members
    if new:
        connection.execute(insert(connection, spans).on_conflict_do_nothing(), new)
    summarise(connection, again)
    _create(connection, {trace: m for trace, m in fresh.items() if trace not in known})
    _merge(connection, {trace: m for trace, m in fresh.items() if trace in known}, known)
    rollups.add(connection, new)  # only the spans inserted: one sent again counts once
    index_spans(connection, new)  # their words, for q: each span once, as inserted
    return len(new)


def _known(connection: Connection, trace_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The stored summaries of these traces, by trace id."""
    known: Dict[str, Dict[str, Any]] = {}
    for part in chunks(trace_ids):
        known.update((found.trace_id, dict(found._mapping)) for found in connection.execute(
            select(traces).where(traces.c.trace_id.in_(part))))
    return known


def _present(connection: Connection, span_ids: Sequence[str]) -> set[str]:
    """Which of these span ids are stored already (sent before, to any replica)."""
    found: set[str] = set()
    for part in chunks(span_ids):
        found.update(row[0] for row in connection.execute(
            select(spans.c.span_id).where(spans.c.span_id.in_(part))))
    return found


def _inherited_rows(rows: List[Dict[str, Any]], changes: Dict[str, Change]) -> None:
    """Span rows not yet written with their inherited session and customer, columns and
    records alike."""
    for row in rows:
        change = changes.get(row["span_id"])
        if change:
            row.update(change, record=json.dumps({**json.loads(row["record"]), **change}))


def _create(connection: Connection, fresh: Dict[str, List[_Span]]) -> None:
    """The rows of traces new to the store, made of their first spans."""
    if not fresh:
        return
    at = now()
    rows = [_summary(trace, members, at) for trace, members in sorted(fresh.items())]
    _upsert(connection, traces, rows, ["trace_id"])
    keys = [key for row in rows
            for key in _keys(row["trace_id"], fresh[row["trace_id"]], row["start_time"])]
    if keys:
        connection.execute(insert(connection, trace_keys).on_conflict_do_nothing(), keys)
    parts = [found for trace, members in sorted(fresh.items())
             for found in _session_parts(trace, members)]
    _upsert(connection, session_parts, parts, ["session_key", "trace_id"])
    refresh_sessions(connection, {found["session_id"] for found in parts})


def summarise(connection: Connection, trace_ids: Sequence[str]) -> None:
    """Make the rows of each trace again from all its spans (after inheritance)."""
    at = now()
    for part in chunks(sorted(set(trace_ids))):
        by_trace: Dict[str, List[_Span]] = {}
        for row in connection.execute(select(*_SPAN_COLUMNS).where(spans.c.trace_id.in_(part))):
            span = _Span._make(row)
            by_trace.setdefault(span.trace_id, []).append(span)
        changes: Dict[str, Change] = {}
        for trace, members in by_trace.items():
            root = _root_of(members)
            if root is not None:
                changes.update(_inherit(trace, members, (root.session, root.customer)))
        if changes:
            _set_inherited(connection, changes)
        rows = [_summary(trace, members, at) for trace, members in sorted(by_trace.items())]
        touched = sessions_of(connection, part)
        for derived in (trace_keys, session_parts):
            connection.execute(delete(derived).where(derived.c.trace_id.in_(part)))
        gone = [trace for trace in part if trace not in by_trace]
        if gone:
            connection.execute(delete(traces).where(traces.c.trace_id.in_(gone)))
        _upsert(connection, traces, rows, ["trace_id"])
        keys = [key for row in rows
                for key in _keys(row["trace_id"], by_trace[row["trace_id"]], row["start_time"])]
        parts = [found for trace, members in sorted(by_trace.items())
                 for found in _session_parts(trace, members)]
        for table, made in ((trace_keys, keys), (session_parts, parts)):
            if made:
                connection.execute(insert(connection, table), made)
        refresh_sessions(connection, touched | {found["session_id"] for found in parts})


def _merge(connection: Connection, fresh: Dict[str, List[_Span]],
           known: Dict[str, Dict[str, Any]]) -> None:
    """Count new spans (no root among them, their inheritance done) into their traces'
    rows."""
    if not fresh:
        return
    at = now()
    rows = [_merged(known[trace], fresh[trace], at) for trace in sorted(fresh)]
    _upsert(connection, traces, rows, ["trace_id"])
    for row in rows:
        if row["start_time"] != known[row["trace_id"]]["start_time"]:
            connection.execute(update(trace_keys).where(trace_keys.c.trace_id == row["trace_id"])
                               .values(start_time=row["start_time"]))
    keys = [key for row in rows
            for key in _keys(row["trace_id"], fresh[row["trace_id"]], row["start_time"])]
    if keys:
        connection.execute(insert(connection, trace_keys).on_conflict_do_nothing(), keys)
    parts = _parts_merged(connection, fresh)
    _upsert(connection, session_parts, parts, ["session_key", "trace_id"])
    refresh_sessions(connection, {found["session_id"] for found in parts})


def _parts_merged(connection: Connection,
                  fresh: Dict[str, List[_Span]]) -> List[Dict[str, Any]]:
    """The session parts of the new spans, each added to the stored part it joins."""
    stored: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for part in chunks(sorted(fresh)):
        for found in connection.execute(select(session_parts)
                                        .where(session_parts.c.trace_id.in_(part))):
            stored[(found.trace_id, found.session_key)] = dict(found._mapping)
    merged = []
    for trace, new in sorted(fresh.items()):
        for made in _session_parts(trace, new):
            old = stored.get((trace, made["session_key"]))
            merged.append(made if old is None else _added(old, made))
    return merged


def summarise_all(connection: Connection) -> None:
    """Summarise every stored trace, and list every session of metrics alone (after a
    migration that made the summaries' tables)."""
    trace_ids = [row[0] for row in connection.execute(select(spans.c.trace_id).distinct())]
    for part in chunks(trace_ids, 2000):
        summarise(connection, part)
    refresh_sessions(connection, {row[0] for row in connection.execute(
        select(metrics.c.session_id).distinct())})


# -- sessions -----------------------------------------------------------------------------
def sessions_of(connection: Connection, trace_ids: Sequence[str]) -> set[str]:
    """The sessions the traces' stored parts belong to."""
    found: set[str] = set()
    for part in chunks(sorted(set(trace_ids))):
        found.update(row[0] for row in connection.execute(
            select(session_parts.c.session_id).where(session_parts.c.trace_id.in_(part))))
    return found


_PART_SUMS = (session_parts.c.session_key, func.max(session_parts.c.customer_id),
              func.max(session_parts.c.config_key), func.count(),
              *(cast(func.sum(column), BigInteger) for column in (
                  session_parts.c.spans, session_parts.c.total_tokens, session_parts.c.errors)),
              func.min(session_parts.c.first_start), func.max(session_parts.c.last_start))


def refresh_sessions(connection: Connection, session_ids: Iterable[str]) -> None:
    """Make the ``sessions`` rows of these sessions again from their parts and metrics;
    a session with neither is no longer listed. Each session's lock held on PostgreSQL."""
    ordered = sorted(set(session_ids))
    lock_sessions(connection, ordered)
    for part in chunks(ordered):
        keys = {index_key(session): session for session in part}
        sums = {row[0]: row[1:] for row in connection.execute(
            select(*_PART_SUMS).where(session_parts.c.session_key.in_(list(keys)))
            .group_by(session_parts.c.session_key))}
        marks = {row[0]: row[1:] for row in connection.execute(
            select(metrics.c.session_id, func.max(metrics.c.config_key),
                   func.max(metrics.c.updated_at))
            .where(metrics.c.session_id.in_(part)).group_by(metrics.c.session_id))}
        rows = [_session_row(key, session, sums.get(key), marks.get(session))
                for key, session in sorted(keys.items())
                if key in sums or session in marks]
        connection.execute(delete(sessions).where(sessions.c.session_key.in_(list(keys))))
        if rows:
            connection.execute(insert(connection, sessions), rows)


def _session_row(key: str, session: str, sums: Optional[Sequence[Any]],
                 marks: Optional[Sequence[Any]]) -> Dict[str, Any]:
    """A session as the page lists it: the figures of its spans (none: 0 traces, 0 spans,
    null tokens and errors), the date of its last metric, the later of both."""
    customer, config, traces_, spans_, tokens, errors, first, last = sums or (
        None, None, 0, 0, None, None, None, None)
    metrics_config, updated = marks or (None, None)
    return {"session_key": key, "session_id": session, "customer_id": customer,
            "config_key": _largest([config, metrics_config]), "traces": traces_,
            "spans": spans_, "total_tokens": tokens, "errors": errors, "first_start": first,
            "last_start": last, "metrics_updated_at": updated,
            "activity": _largest([last, updated])}


def lock_sessions(connection: Connection, session_ids: Sequence[str]) -> None:
    """PostgreSQL: each session's advisory lock (after any trace's, in one order), so two
    replicas adding to one session make its row one after the other."""
    if connection.dialect.name != "postgresql" or not session_ids:
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(
        session.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "big", signed=True)
        for session in session_ids})
    connection.execute(text("SELECT pg_advisory_xact_lock(:space, k) FROM (SELECT unnest("
                            "CAST(:keys AS integer[])) AS k ORDER BY k) AS ordered"),
                       {"space": 0x73657373, "keys": keys})


def _lock_key(trace_id: str) -> int:
    """The advisory lock of a trace: 56 bits of a digest of its id."""
    return int(hashlib.blake2b(trace_id.encode("utf-8", "surrogatepass"),
                               digest_size=7).hexdigest(), 16)


def lock_traces(connection: Connection, trace_ids: Sequence[str]) -> None:
    """PostgreSQL: hold each trace's advisory lock to the end of the transaction, so
    replicas writing spans of one trace keep its rows one after the other. Taken in one
    order everywhere: no two writers wait on each other."""
    if connection.dialect.name != "postgresql" or not trace_ids:
        return
    keys = sorted({_lock_key(trace) for trace in trace_ids})
    connection.execute(text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest("
                            "CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"),
                       {"keys": keys})
