"""Storage on SQLite or PostgreSQL (SQLAlchemy Core): spans, idempotent by span id, with a
summary row per trace for the listing; assignments; versions of configs, prompts and
datasets; the custom metrics of sessions (latest value per field); evaluation runs.

Several processes may share one PostgreSQL database: every write is one transaction,
and each either cannot conflict or settles its conflict in the database (upserts,
per-trace advisory locks), so replicas behave as one server.
"""

from __future__ import annotations

import functools
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
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Select,
    delete,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import FromClause

from fallom.protocol._wire import RecordView
from fallom.server import _rollups as rollups
from fallom.server._db import WRITE, Database, StoreError, database, engine, translated
from fallom.server._search import (
    COMMON,
    MATCHED,
    matched_ids,
    matched_traces,
    query_words,
    sample_matches,
    trace_matches,
    unindex_traces,
)
from fallom.server._summaries import (
    UPPER,
    add_spans,
    ascii_lower,
    lock_sessions,
    lock_traces,
    refresh_sessions,
    sessions_of,
    summarise_all,
)
from fallom.server._tables import (
    COLUMNS,
    assignments,
    chunks,
    eval_items,
    eval_runs,
    index_key,
    insert,
    now,
    repair,
    session_parts,
    spans,
    trace_keys,
    versions,
)
from fallom.server._tables import metrics as metrics_t
from fallom.server._tables import traces as traces_t
from fallom.server.migrations import upgrade

__all__ = ["COLUMNS", "TIME_FORMS", "Store", "migrate", "parse_retention", "readable",
           "retention_text", "since_key"]

logger = logging.getLogger("fallom.serve")


_AGO = re.compile(r"\s*(\d{1,9})\s*([smhdw])\s*", re.IGNORECASE)
TIME_FORMS = ("an ISO 8601 date or time, such as 2026-11-30 or 2026-11-30T09:30:00Z, nor a "
              "time before now: a whole number and s, m, h, d or w, such as 15m, 1h, 24h or 7d")


def since_key(text: str, now: Optional[datetime] = None) -> str:
    """An ISO 8601 date or time, or a time before ``now`` (``15m``, ``24h``, ``7d``: a whole
    number and s, m, h, d or w), as the UTC text stored start times are compared with.

    A time without an offset is UTC, as every SDK's start times are; anything
    else is refused (ValueError naming the forms), not compared as text and matched by
    nothing.
    """
    ago = _AGO.fullmatch(text)
    if ago:
        try:
            moment = (now or datetime.now(timezone.utc)) - timedelta(
                seconds=int(ago.group(1)) * _UNITS[ago.group(2).lower()])
        except OverflowError:
            raise ValueError(f"{text[:40]!r} is before year 1") from None
        return _utc_key(moment)
    value = text.strip()
    if value[-1:] in ("Z", "z"):  # Python 3.9 and 3.10 do not read the suffix
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not {TIME_FORMS}") from None
    return _utc_key(moment)


def _utc_key(moment: datetime) -> str:
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError(f"{moment.isoformat()!r} is out of range in UTC") from None
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def _upgraded(made: Engine, db: Database) -> Tuple[Optional[str], str]:
    """The schema brought up to date (see fallom.server.migrations); revisions before, after."""
    return translated(db, lambda: upgrade(made, db, repair, summarise_all))


def migrate(db: Union[str, Database]) -> str:
    """``fallom serve migrate``: bring the schema up to date, and say so in one line.

    Raises:
        StoreError: the database cannot be reached or used, or is newer than this code.
        DatabaseURLError: ``db`` is not a URL or path the server accepts.
    """
    found = db if isinstance(db, Database) else database(db)
    made = engine(found)
    try:
        before, after = _upgraded(made, found)
    finally:
        made.dispose()
    if before == after:
        return f"fallom serve: {found.shown} is at schema revision {after}, nothing to do"
    return (f"fallom serve: {found.shown} migrated to schema revision {after} "
            f"(from {before or 'no revision'})")


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ taken literally ("!" escapes)."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


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
        self.db = db if isinstance(db, Database) else database(db)
        self.path = self.db.path or self.db.shown
        self.engine = engine(self.db)
        self._postgres = self.db.kind == "postgresql"
        self._write = threading.Lock()  # SQLite: writers wait here, not in SQLite's busy loop
        try:
            _upgraded(self.engine, self.db)
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
        return self._written(lambda connection: add_spans(connection, ordered))

    def _contains(self, column: ColumnElement[Any], needle: str,
                  lowered: bool = False) -> ColumnElement[bool]:
        """``column`` contains ``needle``, ASCII case ignored, as SQLite's LIKE does; on
        PostgreSQL too (its ILIKE would fold more, and slowly). ``lowered``: the column
        holds ASCII lower case already."""
        pattern = _like(ascii_lower(needle))
        if self._postgres and not lowered:
            column = func.translate(column, UPPER, UPPER.lower())
        return column.like(pattern, escape="!")

    def _search(self, summary: FromClause, query: str) -> Optional[ColumnElement[bool]]:
        """Some span of the trace has every word of ``query`` (as a prefix of one of its
        words); None when ``query`` has no word. Words in few of the last spans: their
        traces are read from the text index; common ones: the traces in the listing's
        order, each checked, until a page is found."""
        found = query_words(query)
        if not found:
            return None
        trace_id = summary.c.trace_id
        (count,), = self.query(sample_matches(self._postgres, found))
        if count < COMMON and not self._postgres:
            return matched_traces(self._postgres, trace_id, found)
        if count < COMMON:
            ids = self._matched_ids(found)
            if len(ids) <= MATCHED:
                return trace_id.in_(ids)
        return trace_matches(self._postgres, trace_id, found)

    def _matched_ids(self, found: List[str]) -> List[str]:
        """PostgreSQL: the matching traces by the GIN index alone (a bitmap scan): its
        planner cannot tell how many spans a prefix matches, and would rather read all of
        them in the order of another index (0.3 s at 1M spans for a word of 100 traces)."""
        with self.engine.connect() as connection, connection.begin():
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            connection.execute(text("SET LOCAL enable_indexscan = off"))
            return list(connection.execute(matched_ids(found, MATCHED + 1)).scalars())

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
        matched = self._search(t, search) if search else None
        if matched is not None:
            where.append(matched)
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
            lock_traces(connection, chosen)
            touched = sessions_of(connection, chosen)
            rollups.remove(connection, chosen)  # their calls leave the overview too
            unindex_traces(connection, chosen)  # their words leave the search index
            for table in (spans, trace_keys, session_parts, traces_t):
                connection.execute(delete(table).where(table.c.trace_id.in_(chosen)))
            refresh_sessions(connection, touched)
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
            lock_sessions(connection, [session_id])  # replicas too apply them in turn
            at = now()  # taken in turn: later requests, later times
            upsert = insert(connection, metrics_t)
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
            if changed:
                refresh_sessions(connection, [session_id])
            return changed

        return self._written(work)

    @_said
    def metrics(self, session_ids: Sequence[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """Per session id, per config key, each metric: ``{"value", "updated_at"}``."""
        found: Dict[str, Dict[str, Dict[str, Any]]] = {}
        m = metrics_t
        for part in chunks(list(session_ids)):
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
            upsert = insert(connection, assignments)
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
                    insert(connection, versions).on_conflict_do_nothing()
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
        run_id, at = uuid.uuid4().hex, now()
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
