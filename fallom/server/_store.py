"""Storage on SQLite or PostgreSQL (SQLAlchemy Core): spans, idempotent by span id, with a
summary row per trace for the listing; assignments; versions of configs, prompts and
datasets; the custom metrics of sessions (latest value per field); evaluation runs.

Several processes may share one PostgreSQL database: every write is one transaction,
and each either cannot conflict or settles its conflict in the database (upserts,
per-trace advisory locks), so replicas behave as one server.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import uuid
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Executable,
    Float,
    Index,
    MetaData,
    Select,
    Table,
    Text,
    TypeDecorator,
    and_,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import FromClause

from fallom.protocol._wire import RecordView
from fallom.server._db import WRITE, Database, StoreError, database, engine, translated

__all__ = ["COLUMNS", "Store", "index_key", "migrate", "parse_retention", "readable",
           "retention_text", "since_key", "summarise_all"]

logger = logging.getLogger("fallom.serve")


def since_key(text: str) -> str:
    """An ISO 8601 date or time as the UTC text stored start times are compared with.

    A time without an offset is UTC, as every SDK's start times are; anything
    else is refused (ValueError), not compared as text and matched by nothing.
    """
    value = text.strip()
    if value[-1:] in ("Z", "z"):  # Python 3.9 and 3.10 do not read the suffix
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 date or time, such as 2026-11-30 "
                         "or 2026-11-30T09:30:00Z") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError(f"{text[:40]!r} is out of range in UTC") from None
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


# -- the tables (their DDL is in fallom/server/migrations) --------------------------------
class _Text(TypeDecorator[str]):
    """Text. PostgreSQL's cannot hold NUL, which JSON strings may: there a NUL in a column
    is stored as U+FFFD (the record, JSON text, keeps it escaped and whole)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Optional[str], dialect: Dialect) -> Optional[str]:
        if isinstance(value, str) and dialect.name == "postgresql" and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value


_meta = MetaData()
_INTEGERS = {"total_tokens", "prompt_version", "prompt_variant_index"}
_REALS = {"duration_ms", "ttft_ms"}
# columns later than the first schema, where older records keep the value
_ADDED = ("model", "error_message", "kind", "ttft_ms", "prompt_key", "prompt_version",
          "prompt_ab_test_key", "prompt_variant_index")
COLUMNS = ("span_id", "trace_id", "parent_span_id", "name", "session_id", "customer_id",
           "config_key", "status", "start_time", "duration_ms", "total_tokens", "record",
           *_ADDED)


def _typed(name: str) -> Any:
    return BigInteger() if name in _INTEGERS else Float() if name in _REALS else _Text()


spans = Table("spans", _meta, *(Column(name, _typed(name), primary_key=name == "span_id",
                                       nullable=name not in ("trace_id", "name", "record"))
                                for name in COLUMNS))
traces_t = Table(
    "traces", _meta, Column("trace_id", _Text, primary_key=True), Column("start_time", _Text),
    Column("spans", BigInteger, nullable=False), Column("total_tokens", BigInteger),
    Column("errors", BigInteger, nullable=False), Column("root_name", _Text),
    Column("root_lower", _Text),
    Column("root_duration_ms", Float), Column("duration_ms", Float), Column("session_id", _Text),
    Column("customer_id", _Text), Column("config_key", _Text),
    Column("models", _Text, nullable=False), Column("error_message", _Text),
    Column("names", _Text), Column("updated_at", _Text, nullable=False))
trace_keys = Table(
    "trace_keys", _meta, Column("trace_id", _Text, primary_key=True),
    Column("field", _Text, primary_key=True), Column("value", _Text, primary_key=True),
    Column("start_time", _Text))
session_parts = Table(
    "session_parts", _meta, Column("session_key", _Text, primary_key=True),
    Column("trace_id", _Text, primary_key=True), Column("session_id", _Text, nullable=False),
    Column("customer_id", _Text), Column("config_key", _Text),
    Column("spans", BigInteger, nullable=False), Column("total_tokens", BigInteger),
    Column("errors", BigInteger, nullable=False), Column("first_start", _Text),
    Column("last_start", _Text))
assignments = Table(
    "assignments", _meta, Column("config_key", _Text, primary_key=True),
    Column("config_version", _Text, primary_key=True),
    Column("session_id", _Text, primary_key=True), Column("assigned_model", _Text))
versions = Table(
    "versions", _meta, Column("kind", _Text, primary_key=True),
    Column("key", _Text, primary_key=True), Column("version", BigInteger, primary_key=True),
    Column("body", _Text))
metrics_t = Table(
    "metrics", _meta, Column("session_id", _Text, primary_key=True),
    Column("config_key", _Text, primary_key=True), Column("field", _Text, primary_key=True),
    Column("value", _Text, nullable=False), Column("updated_at", _Text, nullable=False))
eval_runs = Table(
    "eval_runs", _meta, Column("run_id", _Text, primary_key=True),
    Column("created_at", _Text, nullable=False), Column("name", _Text, nullable=False),
    Column("description", _Text), Column("judge_model", _Text),
    Column("dataset_size", BigInteger), Column("items", BigInteger, nullable=False),
    Column("summary", _Text, nullable=False), Index("eval_runs_created", "created_at"))
eval_items = Table(
    "eval_items", _meta, Column("run_id", _Text, primary_key=True),
    Column("position", BigInteger, primary_key=True), Column("item", _Text, nullable=False))


def _repair(connection: Connection) -> None:
    """Tables missing at the current revision (dropped by hand) are made again, empty."""
    _meta.create_all(connection, checkfirst=True)


def migrate(db: Union[str, Database]) -> str:
    """``fallom serve migrate``: bring the schema up to date, and say so in one line.

    Raises:
        StoreError: the database cannot be reached or used, or is newer than this code.
        DatabaseURLError: ``db`` is not a URL or path the server accepts.
    """
    from fallom.server.migrations import upgrade

    found = db if isinstance(db, Database) else database(db)
    made = engine(found)
    try:
        before, after = translated(found, lambda: upgrade(made, found, _repair, summarise_all))
    finally:
        made.dispose()
    if before == after:
        return f"fallom serve: {found.shown} is at schema revision {after}, nothing to do"
    return (f"fallom serve: {found.shown} migrated to schema revision {after} "
            f"(from {before or 'no revision'})")


# -- small helpers -------------------------------------------------------------------------
def _now() -> str:
    """The time, UTC, as the SDKs write start times."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ taken literally ("!" escapes)."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


_KEY_CHARS = 256  # a longer value is kept as a prefix and a digest: B-tree entries are bounded
_START_CHARS = 64  # ISO 8601 times are at most 35: a longer start is compared by its prefix
_NAMES_CHARS = 4000  # a trace's span names kept for search; more are searched span by span
_INT64 = 2**63 - 1


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWERING = str.maketrans(_UPPER, _UPPER.lower())


def _lower(text: str) -> str:
    """ASCII letters in lower case, every other character as it is (SQLite's LIKE folds so)."""
    return text.translate(_LOWERING)


def index_key(value: str) -> str:
    """The form a key (a session id, a model...) takes in the summaries' indexes: itself,
    or when too long for a B-tree entry a prefix and a digest (~330 characters at most)."""
    if len(value) <= _KEY_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:_KEY_CHARS]}\u2026{digest}"


def _lock_key(trace_id: str) -> int:
    """The advisory lock of a trace: 56 bits of a digest of its id."""
    return int(hashlib.blake2b(trace_id.encode("utf-8", "surrogatepass"),
                               digest_size=7).hexdigest(), 16)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Pieces of at most ``size``: bound parameters per statement are limited."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert(connection: Connection, table: Table) -> Any:
    """INSERT with the dialect's ON CONFLICT clauses (both engines have the same ones)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def readable(record: Dict[str, Any]) -> Dict[str, Any]:
    """A stored record with its tokens, input and output under plain names.

    Whatever SDK sent it: v2 records keep them in ``fallom.raw.*`` attributes,
    records of earlier fallom versions as top-level fields.
    """
    try:
        return _readable(record)
    except RecursionError:  # stored before ingest refused such nesting: shown without it
        return _readable(_without_deep_raw(record))


def _readable(record: Dict[str, Any]) -> Dict[str, Any]:
    view = RecordView(record)
    out = dict(record)
    out["prompt_tokens"], out["completion_tokens"], out["total_tokens"] = view.usage
    ttft = view.time_to_first_token_ms
    if ttft is not None:
        out["time_to_first_token_ms"] = ttft
    precise = view.duration_ms  # to the microsecond where the record has it
    if precise is not None:
        out["precise_duration_ms"] = precise
    if view.has_input:
        out["input"] = view.input
    if view.has_output:
        out["output"] = view.output
    return out


def _without_deep_raw(record: Dict[str, Any]) -> Dict[str, Any]:
    """``record`` with each ``fallom.raw.*`` value JSON cannot read back (too deep) noted."""
    attributes = dict(record.get("attributes") or {})
    for key, value in attributes.items():
        if key.startswith("fallom.raw.") and isinstance(value, str):
            try:
                json.loads(value)
            except RecursionError:
                attributes[key] = json.dumps("(not shown: JSON nested too deeply)")
            except ValueError:
                pass
    return {**record, "attributes": attributes}


# -- trace summaries -----------------------------------------------------------------------
class _Span(NamedTuple):
    """The columns of a span a trace's summary is made of."""

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


def _inherit(trace: str, members: List[_Span]) -> Dict[str, Dict[str, Optional[str]]]:
    """What each child takes from the trace's root: per span id, the fields to set.

    A span whose session was left to default (its trace id, or none) takes the session
    of its trace's root, and one with no customer the root's: OpenTelemetry apps often
    set session.id and user.id on the root span only. ``members`` is updated in place.
    """
    roots = [span for span in members if span.parent is None]
    if not roots:
        return {}
    root = min(roots, key=lambda s: (s.start is not None, s.start or "", s.span_id))
    changes: Dict[str, Dict[str, Optional[str]]] = {}
    for index, span in enumerate(members):
        if span.parent is None:
            continue
        change: Dict[str, Optional[str]] = {}
        if span.session in (None, trace) and root.session not in (None, trace):
            change["session_id"] = root.session
        if span.customer is None and root.customer is not None:
            change["customer_id"] = root.customer
        if change:
            changes[span.span_id] = change
            members[index] = span._replace(session=change.get("session_id", span.session),
                                           customer=change.get("customer_id", span.customer))
    return changes


def _largest(values: Iterator[Optional[Any]]) -> Optional[Any]:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _summary(trace: str, members: List[_Span], now: str) -> Dict[str, Any]:
    """The listing's row of a trace: every figure over all its spans."""
    starts = [span.start for span in members if span.start is not None]
    roots = [span for span in members if span.parent is None]
    tokens = [span.tokens for span in members if span.tokens is not None]
    names = _lower("\n".join(sorted({span.name for span in members})))
    root_name = _largest(span.name for span in roots)
    return {"trace_id": trace, "start_time": min(starts)[:_START_CHARS] if starts else None,
            "spans": len(members), "total_tokens": min(sum(tokens), _INT64) if tokens else None,
            "errors": sum(1 for span in members if span.status == "ERROR"),
            "root_name": root_name, "root_lower": None if root_name is None else _lower(root_name),
            "root_duration_ms": _largest(span.duration for span in roots),
            "duration_ms": _largest(span.duration for span in members),
            "session_id": _largest(span.session for span in members),
            "customer_id": _largest(span.customer for span in members),
            "config_key": _largest(span.config for span in members),
            "models": json.dumps(sorted({s.model for s in members if s.model is not None})),
            "error_message": _largest(span.error for span in members),
            "names": names if len(names) <= _NAMES_CHARS else None, "updated_at": now}


def _keys(trace: str, members: List[_Span], start: Optional[str]) -> List[Dict[str, Any]]:
    """The trace's rows of ``trace_keys``: each distinct value of each filtered field."""
    return [{"trace_id": trace, "field": field, "value": value, "start_time": start}
            for field, attribute in _KEYED
            for value in sorted({index_key(getattr(span, attribute)) for span in members
                                 if getattr(span, attribute) is not None})]


def _session_parts(trace: str, members: List[_Span]) -> List[Dict[str, Any]]:
    """The trace's figures per session it has (not the trace's own id, which a trace
    outside any session carries): the sessions page adds these up."""
    by_session: Dict[str, List[_Span]] = {}
    for span in members:
        if span.session is not None and span.session != trace:
            by_session.setdefault(span.session, []).append(span)
    parts = []
    for session, group in by_session.items():
        tokens = [span.tokens for span in group if span.tokens is not None]
        starts = [span.start for span in group if span.start is not None]
        parts.append({
            "session_key": index_key(session), "trace_id": trace, "session_id": session,
            "customer_id": _largest(span.customer for span in group),
            "config_key": _largest(span.config for span in group), "spans": len(group),
            "total_tokens": min(sum(tokens), _INT64) if tokens else None,
            "errors": sum(1 for span in group if span.status == "ERROR"),
            "first_start": min(starts) if starts else None,
            "last_start": max(starts) if starts else None})
    return parts


def _set_inherited(connection: Connection, changes: Dict[str, Dict[str, Optional[str]]]) -> None:
    """Write inherited sessions and customers into the columns and the records alike."""
    for part in _chunks(sorted(changes)):
        found = connection.execute(select(spans.c.span_id, spans.c.record)
                                   .where(spans.c.span_id.in_(part))).all()
        rows = []
        for span_id, record in found:
            change = changes[span_id]
            whole = {**json.loads(record), **change}
            rows.append({"id": span_id, "session": change.get("session_id"),
                         "customer": change.get("customer_id"), "new_record": json.dumps(whole),
                         "set_session": "session_id" in change,
                         "set_customer": "customer_id" in change})
        for row in rows:
            values: Dict[str, Any] = {"record": row["new_record"]}
            if row["set_session"]:
                values["session_id"] = row["session"]
            if row["set_customer"]:
                values["customer_id"] = row["customer"]
            connection.execute(update(spans).where(spans.c.span_id == row["id"]).values(values))


def _summarise(connection: Connection, trace_ids: Sequence[str]) -> None:
    """Make the summary and keys of each trace again from its spans (after inheritance)."""
    now = _now()
    for part in _chunks(sorted(set(trace_ids))):
        by_trace: Dict[str, List[_Span]] = {}
        for row in connection.execute(select(*_SPAN_COLUMNS).where(spans.c.trace_id.in_(part))):
            span = _Span._make(row)
            by_trace.setdefault(span.trace_id, []).append(span)
        changes: Dict[str, Dict[str, Optional[str]]] = {}
        for trace, members in by_trace.items():
            changes.update(_inherit(trace, members))
        if changes:
            _set_inherited(connection, changes)
        rows = [_summary(trace, members, now) for trace, members in sorted(by_trace.items())]
        keys = [key for row in rows
                for key in _keys(row["trace_id"], by_trace[row["trace_id"]], row["start_time"])]
        sessions = [found for trace, members in sorted(by_trace.items())
                    for found in _session_parts(trace, members)]
        for derived in (trace_keys, session_parts):
            connection.execute(delete(derived).where(derived.c.trace_id.in_(part)))
        gone = [trace for trace in part if trace not in by_trace]
        if gone:
            connection.execute(delete(traces_t).where(traces_t.c.trace_id.in_(gone)))
        if rows:
            upsert = _insert(connection, traces_t)
            connection.execute(upsert.on_conflict_do_update(
                index_elements=["trace_id"],
                set_={c.name: upsert.excluded[c.name] for c in traces_t.c
                      if c.name != "trace_id"}), rows)
        if keys:
            connection.execute(_insert(connection, trace_keys), keys)
        if sessions:
            connection.execute(_insert(connection, session_parts), sessions)


def summarise_all(connection: Connection) -> None:
    """Summarise every stored trace (the migration that added summaries runs this)."""
    trace_ids = [row[0] for row in connection.execute(select(spans.c.trace_id).distinct())]
    for part in _chunks(trace_ids, 2000):
        _summarise(connection, part)


def _lock_traces(connection: Connection, trace_ids: Sequence[str]) -> None:
    """PostgreSQL: hold each trace's advisory lock to the end of the transaction, so
    replicas writing spans of one trace summarise it one after the other. Taken in
    one order everywhere: no two writers wait on each other."""
    if connection.dialect.name != "postgresql" or not trace_ids:
        return
    keys = sorted({_lock_key(trace) for trace in trace_ids})
    connection.execute(text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest("
                            "CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"),
                       {"keys": keys})


# -- retention -----------------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}
_RETENTION = re.compile(r"\s*(\d{1,9})\s*([smhdw])\s*", re.IGNORECASE)
_SWEEP_BATCH = 500  # traces deleted per transaction: ingest waits for one batch at most


def parse_retention(text: str) -> float:
    """``--retention``: a whole number and a unit (s, m, h, d, w), as seconds.

    Raises:
        ValueError: anything else, or zero (the message says what is accepted).
    """
    found = _RETENTION.fullmatch(text)
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"{text[:40]!r} is not a retention: a whole number and a unit, s, m, "
                         "h, d or w, such as 30d, 12h or 2w")
    return float(int(found.group(1)) * _UNITS[found.group(2).lower()])


def retention_text(seconds: float) -> str:
    """``seconds`` said in the largest unit that divides it: "30 days", "90 minutes"."""
    for unit in ("w", "d", "h", "m", "s"):
        count, rest = divmod(int(seconds), _UNITS[unit])
        if rest == 0 and count:
            return f"{count} {_UNIT_NAMES[unit]}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


# -- the store -----------------------------------------------------------------------------
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_RETRIED = ("40P01", "40001")  # PostgreSQL's deadlock and serialization failure: try again


def _said(method: F) -> F:
    """The method's database errors as :class:`StoreError` (UnavailableError: try later)."""
    @functools.wraps(method)
    def run(self: Store, *args: Any, **kwargs: Any) -> Any:
        return translated(self.db, lambda: method(self, *args, **kwargs))
    return cast(F, run)


class Store:
    """One database: SQLite in WAL mode or PostgreSQL, through a pool of connections.

    Args:
        db: a path or URL (see :func:`fallom.server._db.database`), or a parsed one.
        retention: seconds; traces that started longer ago are deleted in the background.

    Raises:
        StoreError: the database cannot be used (UnavailableError: cannot be reached), or its
            schema is newer than this code (SchemaTooNewError). Migrates it otherwise.
    """

    def __init__(self, db: Union[str, Database], *, retention: Optional[float] = None) -> None:
        from fallom.server.migrations import upgrade

        self.db = db if isinstance(db, Database) else database(db)
        self.path = self.db.path or self.db.shown
        self.engine = engine(self.db)
        self._postgres = self.db.kind == "postgresql"
        self._write = threading.Lock()  # SQLite: writers wait here, not in SQLite's busy loop
        try:
            translated(self.db, lambda: upgrade(self.engine, self.db, _repair, summarise_all))
        except BaseException:
            self.engine.dispose()
            raise
        self.retention = retention
        self.swept = threading.Event()  # set after each retention pass
        self._stop = threading.Event()
        self._sweeper: Optional[threading.Thread] = None
        if retention is not None:
            self._sweeper = threading.Thread(target=self._sweep, name="fallom-retention",
                                             daemon=True)
            self._sweeper.start()

    def close(self) -> None:
        """Stop the retention thread and close every connection (those in use when returned)."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
        self.engine.dispose()

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction, SQLite's write lock taken at its start; committed, or
        rolled back on any error."""
        queue: ContextManager[Any] = nullcontext() if self._postgres else self._write
        with queue, self.engine.connect().execution_options(**{WRITE: True}) as connection, \
                connection.begin():
            yield connection

    def _written(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a write transaction, run again when PostgreSQL chose it as the
        victim of a deadlock (the other transaction goes on)."""
        for attempt in range(5):
            try:
                with self._writing() as connection:
                    return work(connection)
            except sa_exc.DBAPIError as error:
                if attempt == 4 or getattr(error.orig, "sqlstate", None) not in _RETRIED:
                    raise
        raise AssertionError("not reached")

    @_said
    def query(self, statement: Union[str, Executable],
              params: Optional[Mapping[str, Any]] = None) -> List[Tuple[Any, ...]]:
        """Rows of a read-only query (for the views of the web UI): a Core statement, or
        SQL both engines speak with ``:name`` parameters."""
        run = text(statement) if isinstance(statement, str) else statement
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(run, dict(params or {}))]

    # -- spans -----------------------------------------------------------------------------
    @_said
    def add_rows(self, rows: Sequence[Tuple[Any, ...]]) -> int:
        """Store prepared rows, each once by span id; committed before this returns."""
        if not rows:
            return 0
        unique: Dict[str, Dict[str, Any]] = {}
        for row in rows:  # the first of a span id sent twice in one batch, as before
            unique.setdefault(row[0], dict(zip(COLUMNS, row)))
        ordered = [unique[span_id] for span_id in sorted(unique)]  # one lock order for all

        def work(connection: Connection) -> int:
            _lock_traces(connection, [row["trace_id"] for row in ordered])
            stored = connection.execute(
                _insert(connection, spans).on_conflict_do_nothing()
                .returning(spans.c.trace_id), ordered).all()
            _summarise(connection, [row[0] for row in stored])
            return len(stored)

        return self._written(work)

    def _contains(self, column: ColumnElement[Any], needle: str,
                  lowered: bool = False) -> ColumnElement[bool]:
        """``column`` contains ``needle``, ASCII case ignored, as SQLite's LIKE does; on
        PostgreSQL too (its ILIKE would fold more, and slowly). ``lowered``: the column
        holds ASCII lower case already."""
        pattern = _like(_lower(needle))
        if self._postgres and not lowered:
            column = func.translate(column, _UPPER, _UPPER.lower())
        return column.like(pattern, escape="!")

    def _search(self, summary: FromClause, needle: str) -> ColumnElement[bool]:
        """Any span's name contains ``needle``: the summary's names say so, unless they were
        too many to keep (or ``needle`` spans two of them): then the spans are read."""
        other = spans.alias("named")
        by_span = exists().where(other.c.trace_id == summary.c.trace_id,
                                 self._contains(other.c.name, needle))
        if "\n" in needle:
            return by_span
        return or_(self._contains(summary.c.names, needle, lowered=True),
                   and_(summary.c.names.is_(None), by_span))

    @_said
    def traces(self, **filters: Any) -> List[Dict[str, Any]]:
        """Traces newest first, one summary each; every filter is optional (see
        :meth:`listing`).

        A filter picks traces; each summary is over all the trace's spans. Tokens
        are null when no span of the trace counted any. ``since`` and ``until`` (a
        trace starting before it) are ISO 8601 dates or times (ValueError if not).
        """
        return [{"trace_id": r[0], "start_time": r[1], "total_tokens": r[2],
                 "status": "ERROR" if r[3] else "OK", "spans": r[4], "root_name": r[5],
                 "duration_ms": r[6] if r[6] is not None else r[12], "session_id": r[7],
                 "customer_id": r[8], "config_key": r[9], "models": json.loads(r[10]),
                 "error_message": r[11]} for r in self.query(self.listing(**filters))]

    def listing(self, *, session_id: Optional[str] = None, customer_id: Optional[str] = None,
                config_key: Optional[str] = None, status: Optional[str] = None,
                model: Optional[str] = None, name: Optional[str] = None,
                since: Optional[str] = None, until: Optional[str] = None,
                search: Optional[str] = None, min_duration_ms: Optional[int] = None,
                min_tokens: Optional[int] = None, min_spans: Optional[int] = None,
                oldest_first: bool = False, limit: int = 50, offset: int = 0) -> Select[Any]:
        """The query of :meth:`traces`: read in the order of an index (traces_start, or
        trace_keys_value for a session, customer, config or model), so a page costs its
        50 rows, not a pass over every span."""
        t = traces_t
        keyed = [(field, value) for field, value in (
            ("session", session_id), ("customer", customer_id), ("config", config_key),
            ("model", model)) if value]
        where: List[ColumnElement[bool]] = []
        source: FromClause = t
        order_start, order_id = t.c.start_time, t.c.trace_id
        for index, (field, value) in enumerate(keyed):
            k = trace_keys.alias(f"k{index}")
            if index == 0:  # read in the order of this key's index: its newest traces first
                source = k.join(t, t.c.trace_id == k.c.trace_id)
                order_start, order_id = k.c.start_time, k.c.trace_id
                where += [k.c.field == field, k.c.value == index_key(value)]
            else:
                where.append(exists().where(k.c.trace_id == t.c.trace_id, k.c.field == field,
                                            k.c.value == index_key(value)))
        if status in ("ERROR", "OK"):  # a literal 0, so the partial index of errors applies
            errors = t.c.errors > literal_column("0")
            where.append(errors if status == "ERROR" else ~errors)
        if name:
            where.append(self._contains(t.c.root_lower, name, lowered=True))
        if search:
            where.append(self._search(t, search))
        if since:
            where.append(t.c.start_time >= since_key(since))
        if until:
            where.append(t.c.start_time < since_key(until))
        for minimum, column in ((min_duration_ms, t.c.duration_ms), (min_tokens, t.c.total_tokens),
                                (min_spans, t.c.spans)):
            if minimum is not None:
                where.append(column >= minimum)
        order = ([order_start.asc().nulls_first(), order_id.asc()] if oldest_first
                 else [order_start.desc().nulls_last(), order_id.desc()])
        return (select(t.c.trace_id, t.c.start_time, t.c.total_tokens, t.c.errors, t.c.spans,
                       t.c.root_name, t.c.root_duration_ms, t.c.session_id, t.c.customer_id,
                       t.c.config_key, t.c.models, t.c.error_message, t.c.duration_ms)
                .select_from(source).where(*where).order_by(*order)
                .limit(max(0, min(limit, 1000))).offset(max(0, offset)))

    @_said
    def trace(self, trace_id: str) -> List[Dict[str, Any]]:
        rows = self.query(select(spans.c.record).where(spans.c.trace_id == trace_id)
                          .order_by(spans.c.start_time.asc().nulls_first()))
        return [readable(json.loads(r[0])) for r in rows]

    # -- retention -------------------------------------------------------------------------
    @_said
    def expire(self, before: str, batch: int = _SWEEP_BATCH) -> int:
        """Delete up to ``batch`` traces that started before ``before`` (since_key's form),
        oldest first, in one transaction; those without a start time by when their last
        span came. Returns how many; PostgreSQL replicas take turns (0: another is at it)."""
        t = traces_t

        def work(connection: Connection) -> int:
            if self._postgres and not connection.execute(text(
                    "SELECT pg_try_advisory_xact_lock(:a, :b)"),
                    {"a": 0x66616C6C, "b": 0x72657465}).scalar():
                return 0
            chosen = list(connection.execute(
                select(t.c.trace_id).where(t.c.start_time < before)
                .order_by(t.c.start_time.asc().nulls_first(), t.c.trace_id).limit(batch)
            ).scalars())
            if len(chosen) < batch:
                chosen += connection.execute(
                    select(t.c.trace_id).where(t.c.start_time.is_(None), t.c.updated_at < before)
                    .limit(batch - len(chosen))).scalars()
            _lock_traces(connection, chosen)
            for table in (spans, trace_keys, session_parts, traces_t):
                connection.execute(delete(table).where(table.c.trace_id.in_(chosen)))
            return len(chosen)

        return self._written(work)

    def _cutoff(self) -> str:
        assert self.retention is not None
        moment = datetime.now(timezone.utc) - timedelta(seconds=self.retention)
        return since_key(moment.isoformat())

    def _sweep(self) -> None:
        """The retention thread: a pass now and then, each in batches, so ingest goes on."""
        assert self.retention is not None
        every = min(60.0, max(1.0, self.retention / 10))
        while not self._stop.is_set():
            try:
                while self.expire(self._cutoff()) == _SWEEP_BATCH and not self._stop.wait(0.01):
                    pass
            except StoreError as exc:  # the database went away: the next pass tries again
                logger.warning("fallom serve: retention: %s", exc)
            except Exception:  # a bug: said, and the server goes on
                logger.exception("fallom serve: retention failed")
            self.swept.set()
            self._stop.wait(every)

    # -- custom metrics of sessions --------------------------------------------------------
    @_said
    def set_metrics(self, session_id: str, config_key: str, values: Dict[str, str]) -> int:
        """Set each metric of a session (its value as JSON text): the latest value per
        field wins. Requests are applied whole, one after the other.

        Returns:
            How many fields were added or changed value.
        """
        def work(connection: Connection) -> int:
            at = _now()  # taken in turn: later requests, later times
            upsert = _insert(connection, metrics_t)
            # a value is replaced only when it differs, so a request sent again (a retry
            # after a lost reply) changes nothing, not even when the value was set
            statement = upsert.on_conflict_do_update(
                index_elements=["session_id", "config_key", "field"],
                set_={"value": upsert.excluded.value, "updated_at": upsert.excluded.updated_at},
                where=metrics_t.c.value != upsert.excluded.value).returning(metrics_t.c.field)
            changed = 0
            for field, value in sorted(values.items()):  # a row back: added or changed
                changed += len(connection.execute(statement, {
                    "session_id": session_id, "config_key": config_key, "field": field,
                    "value": value, "updated_at": at}).all())
            return changed

        return self._written(work)

    @_said
    def metrics(self, session_ids: Sequence[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """Per session id, per config key, each metric: ``{"value", "updated_at"}``."""
        found: Dict[str, Dict[str, Dict[str, Any]]] = {}
        m = metrics_t
        for part in _chunks(list(session_ids)):
            for session, config, field, value, at in self.query(
                    select(m.c.session_id, m.c.config_key, m.c.field, m.c.value, m.c.updated_at)
                    .where(m.c.session_id.in_(part))
                    .order_by(m.c.session_id, m.c.config_key, m.c.field)):
                by_config = found.setdefault(session, {}).setdefault(config, {})
                by_config[field] = {"value": json.loads(value), "updated_at": at}
        return found

    # -- assignments and versions ---------------------------------------------------------
    @_said
    def add_assignment(self, body: Dict[str, Any]) -> None:
        row = {name: str(body.get(name)) for name in
               ("config_key", "config_version", "session_id", "assigned_model")}

        def work(connection: Connection) -> None:
            upsert = _insert(connection, assignments)
            connection.execute(upsert.on_conflict_do_update(
                index_elements=["config_key", "config_version", "session_id"],
                set_={"assigned_model": upsert.excluded.assigned_model}), row)

        self._written(work)

    @_said
    def assignments(self) -> List[Tuple[str, str, str, str]]:
        a = assignments
        return cast(List[Tuple[str, str, str, str]], self.query(
            select(a.c.config_key, a.c.config_version, a.c.session_id, a.c.assigned_model)))

    @_said
    def version_of(self, kind: str, key: str, body: Dict[str, Any]) -> int:
        """The version number of ``body``: the latest one if unchanged, else a new one.

        Bodies are kept and compared exactly as written, key order included:
        the order of object-shaped variants decides assignments. Replicas meeting the
        same new body make one version of it: the second finds the first's.
        """
        written = json.dumps(body)

        def work(connection: Connection) -> int:
            while True:
                latest = connection.execute(
                    select(versions.c.version, versions.c.body)
                    .where(versions.c.kind == kind, versions.c.key == key)
                    .order_by(versions.c.version.desc()).limit(1)).first()
                if latest is not None and latest[1] == written:
                    return int(latest[0])
                number = 1 if latest is None else int(latest[0]) + 1
                made = connection.execute(
                    _insert(connection, versions).on_conflict_do_nothing()
                    .returning(versions.c.version),
                    {"kind": kind, "key": key, "version": number, "body": written}).first()
                if made is not None:
                    return number

        return self._written(work)

    @_said
    def version(self, kind: str, key: str, version: int) -> Optional[Dict[str, Any]]:
        v = versions
        rows = self.query(select(v.c.body).where(v.c.kind == kind, v.c.key == key,
                                                 v.c.version == version))
        return dict(json.loads(rows[0][0])) if rows else None

    @_said
    def latest_version(self, kind: str, key: str) -> Optional[Tuple[int, Dict[str, Any]]]:
        """The newest version of ``key`` and its body; None when it has none."""
        v = versions
        rows = self.query(select(v.c.version, v.c.body).where(v.c.kind == kind, v.c.key == key)
                          .order_by(v.c.version.desc()).limit(1))
        return (int(rows[0][0]), dict(json.loads(rows[0][1]))) if rows else None

    # -- evaluation runs -------------------------------------------------------------------
    @_said
    def add_run(self, head: Dict[str, Any], items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        """Store a run and its items in one transaction, under a new id.

        Args:
            head: ``name``, ``description``, ``judge_model``, ``dataset_size`` and
                ``summary`` (its metrics and their figures).
            items: the items' results, in the order sent.

        Returns:
            The run as :meth:`runs` lists it.
        """
        run_id, at = uuid.uuid4().hex, _now()
        rows = [{"run_id": run_id, "position": i, "item": json.dumps(item, allow_nan=False)}
                for i, item in enumerate(items)]

        def work(connection: Connection) -> None:
            connection.execute(eval_runs.insert(), {
                "run_id": run_id, "created_at": at, "name": head["name"],
                "description": head["description"], "judge_model": head["judge_model"],
                "dataset_size": head["dataset_size"], "items": len(rows),
                "summary": json.dumps(head["summary"])})
            if rows:
                connection.execute(eval_items.insert(), rows)

        self._written(work)
        return self.runs(run_id=run_id)[0]

    @_said
    def runs(self, *, run_id: Optional[str] = None, limit: int = 50,
             offset: int = 0) -> List[Dict[str, Any]]:
        """Runs newest first (or the one ``run_id``), each with its figures, no items."""
        r = eval_runs
        statement = select(r.c.run_id, r.c.created_at, r.c.name, r.c.description,
                           r.c.judge_model, r.c.dataset_size, r.c["items"], r.c.summary)
        if run_id is not None:
            statement = statement.where(r.c.run_id == run_id)
        rows = self.query(statement.order_by(r.c.created_at.desc(), r.c.run_id.desc())
                          .limit(max(0, min(limit, 1000))).offset(max(0, offset)))
        return [{"run_id": r[0], "created_at": r[1], "name": r[2], "description": r[3],
                 "judge_model": r[4], "dataset_size": r[5], "items": r[6],
                 **json.loads(r[7])} for r in rows]

    @_said
    def run(self, run_id: str) -> Optional[Dict[str, Any]]:
        """One run with every item's result (``results``, in the order sent); None if absent."""
        found = self.runs(run_id=run_id)
        if not found:
            return None
        items = self.query(select(eval_items.c.item).where(eval_items.c.run_id == run_id)
                           .order_by(eval_items.c.position))
        return {**found[0], "results": [json.loads(row[0]) for row in items]}
