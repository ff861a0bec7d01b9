"""SQLite storage: spans (idempotent by span id), assignments, versions of configs,
prompts and datasets, the custom metrics of sessions (latest value per field), and
evaluation runs with their items."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from fallom.protocol._wire import RecordView

__all__ = ["Store", "readable", "since_key"]


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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_span_id TEXT,
    name TEXT NOT NULL, session_id TEXT, customer_id TEXT, config_key TEXT,
    status TEXT, start_time TEXT, duration_ms REAL, total_tokens INTEGER, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_customer ON spans (customer_id);
CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_time);
CREATE TABLE IF NOT EXISTS assignments (
    config_key TEXT, config_version TEXT, session_id TEXT, assigned_model TEXT,
    PRIMARY KEY (config_key, config_version, session_id));
CREATE TABLE IF NOT EXISTS versions (
    kind TEXT, key TEXT, version INTEGER, body TEXT, PRIMARY KEY (kind, key, version));
CREATE TABLE IF NOT EXISTS metrics (
    session_id TEXT NOT NULL, config_key TEXT NOT NULL, field TEXT NOT NULL,
    value TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (session_id, config_key, field));
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    judge_model TEXT, dataset_size INTEGER, items INTEGER NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS eval_runs_created ON eval_runs (created_at);
CREATE TABLE IF NOT EXISTS eval_items (
    run_id TEXT NOT NULL, position INTEGER NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (run_id, position));
"""


# columns later than the first schema: name, type, where older records keep the value
_ADDED_TYPES = {"model": "TEXT", "error_message": "TEXT", "kind": "TEXT",
                "ttft_ms": "REAL", "prompt_key": "TEXT", "prompt_version": "INTEGER",
                "prompt_ab_test_key": "TEXT", "prompt_variant_index": "INTEGER"}
_ADDED = tuple(_ADDED_TYPES)
COLUMNS = ("span_id", "trace_id", "parent_span_id", "name", "session_id", "customer_id",
           "config_key", "status", "start_time", "duration_ms", "total_tokens", "record",
           *_ADDED)
_INSERT = (f"INSERT OR IGNORE INTO spans ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(COLUMNS))})")


# A metric's value is replaced only when it differs, so a request sent again (a retry
# after a lost reply) changes nothing, not even when the value was set.
_SET_METRIC = ("UPDATE metrics SET value = :value, updated_at = :at WHERE session_id = :session "
               "AND config_key = :config AND field = :field AND value != :value")
_ADD_METRIC = ("INSERT OR IGNORE INTO metrics VALUES (:session, :config, :field, :value, :at)")


def _now() -> str:
    """The time, UTC, as the SDKs write start times."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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


_BUSY_S = 30.0  # how long a statement waits for another connection's lock
_POOL = 8  # idle connections kept open for the next request


def _use_wal(db: sqlite3.Connection) -> None:
    """WAL mode (kept in the file). Switching needs the file to itself and SQLite
    answers "locked" at once rather than waiting: retried while another server
    starting on the same new file does the same."""
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _rollback(db: sqlite3.Connection) -> None:
    """End a failed transaction, if SQLite has not already (it does on a full disk):
    the error that failed it is the one to report, not "cannot rollback"."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken at once; committed, or rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise


# A span whose session was left to default (its trace id, or none) takes the session of
# its trace's root, and one with no customer the root's: OpenTelemetry apps often set
# session.id and user.id on the root span only. Children usually arrive first (the root
# ends last), so this runs for the children already stored when the root arrives too.
_DEFAULTED = ("(session_id IS NULL OR session_id = trace_id) AND :session IS NOT NULL "
              "AND :session != trace_id")
_NO_CUSTOMER = "customer_id IS NULL AND :customer IS NOT NULL"
_INHERIT = f"""
    UPDATE spans SET
        session_id = CASE WHEN {_DEFAULTED} THEN :session ELSE session_id END,
        customer_id = CASE WHEN {_NO_CUSTOMER} THEN :customer ELSE customer_id END,
        record = CASE
            WHEN ({_DEFAULTED}) AND ({_NO_CUSTOMER})
                THEN json_set(record, '$.session_id', :session, '$.customer_id', :customer)
            WHEN {_DEFAULTED} THEN json_set(record, '$.session_id', :session)
            WHEN {_NO_CUSTOMER} THEN json_set(record, '$.customer_id', :customer)
            ELSE record END
    WHERE trace_id = :trace AND parent_span_id IS NOT NULL
      AND (({_DEFAULTED}) OR ({_NO_CUSTOMER}))"""
_ROOT = ("SELECT session_id, customer_id FROM spans WHERE trace_id = ? "
         "AND parent_span_id IS NULL ORDER BY start_time LIMIT 1")


def _may_inherit(row: Sequence[Any]) -> bool:
    """Whether storing ``row`` can start an inheritance in its trace, either way."""
    trace, parent, session, customer = row[1], row[2], row[4], row[5]
    if parent is None:
        return (session is not None and session != trace) or customer is not None
    return session is None or session == trace or customer is None


class Store:
    """One SQLite file in WAL mode; a small pool of connections, writes serialised."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: List[Tuple[Tuple[int, int], sqlite3.Connection]] = []
        self._pool = threading.Lock()
        self._closed = False
        self._write = threading.Lock()
        with self._connection() as db:
            self._create(db)

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        """The schema, and the columns added since a database was made (filled in).

        In one write transaction, so two servers starting on the same new file
        do not both add a column: the second waits, then finds them all.
        """
        with _transaction(db):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            have = {row[1] for row in db.execute("PRAGMA table_info(spans)")}
            for column in (c for c in _ADDED if c not in have):
                field = "time_to_first_token_ms" if column == "ttft_ms" else column
                db.execute(f"ALTER TABLE spans ADD COLUMN {column} {_ADDED_TYPES[column]}")
                db.execute(f"UPDATE spans SET {column} = json_extract(record, '$.{field}')")

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_BUSY_S, isolation_level=None,
                             check_same_thread=False)  # used by one thread at a time
        try:
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        return db

    def _file(self) -> Tuple[int, int]:
        """Which file is at ``path`` now: a connection to a deleted or replaced one is
        not reused (writes to it would be lost with it)."""
        try:
            found = os.stat(self.path)
        except OSError:
            return (-1, -1)
        return (found.st_dev, found.st_ino)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection from the pool: one per request thread would hold three file
        descriptors each until the collector found it, however many threads came and went."""
        file = self._file()
        with self._pool:
            stale = [db for at, db in self._idle if at != file]
            self._idle = [entry for entry in self._idle if entry[0] == file]
            db = self._idle.pop()[1] if self._idle else None
        for old in stale:
            old.close()
        if db is None:
            db = self._open()
            file = self._file()
        try:
            yield db
        finally:
            with self._pool:
                kept = not self._closed and len(self._idle) < _POOL
                if kept:
                    self._idle.append((file, db))
            if not kept:
                db.close()

    def close(self) -> None:
        """Close every connection: the idle ones now, those in use when given back."""
        with self._pool:
            idle, self._idle, self._closed = self._idle, [], True
        for _, db in idle:
            db.close()

    # -- spans -----------------------------------------------------------------------
    def add_rows(self, rows: Sequence[Tuple[Any, ...]]) -> int:
        """Store prepared rows, each once by span id; committed before this returns."""
        traces = sorted({row[1] for row in rows if _may_inherit(row)})
        with self._write, self._connection() as db, _transaction(db):
            before = db.total_changes
            db.executemany(_INSERT, rows)
            stored = db.total_changes - before
            for trace in traces:
                root = db.execute(_ROOT, (trace,)).fetchone()
                if root is not None:
                    db.execute(_INHERIT, {"trace": trace, "session": root[0],
                                          "customer": root[1]})
        return stored

    def traces(self, *, session_id: Optional[str] = None, customer_id: Optional[str] = None,
               config_key: Optional[str] = None, status: Optional[str] = None,
               model: Optional[str] = None, name: Optional[str] = None,
               since: Optional[str] = None, until: Optional[str] = None,
               search: Optional[str] = None, min_duration_ms: Optional[int] = None,
               min_tokens: Optional[int] = None, min_spans: Optional[int] = None,
               oldest_first: bool = False, limit: int = 50, offset: int = 0
               ) -> List[Dict[str, Any]]:
        """Traces newest first, one summary each; every filter is optional.

        A filter picks traces; each summary is over all the trace's spans. Tokens
        are null when no span of the trace counted any. ``since`` and ``until`` (a
        trace starting before it) are ISO 8601 dates or times (ValueError if not).
        """
        where, args = [], []
        for column, value in (("session_id", session_id), ("customer_id", customer_id),
                              ("config_key", config_key)):
            if value:
                where.append(f"trace_id IN (SELECT trace_id FROM spans WHERE {column} = ?)")
                args.append(value)
        having: List[str] = []
        later: List[Any] = []
        if status == "ERROR":
            having.append("MAX(status = 'ERROR') = 1")
        elif status == "OK":
            having.append("MAX(status = 'ERROR') = 0")
        if model:
            having.append("SUM(model = ?) > 0")
            later.append(model)
        if name:
            having.append("MAX(CASE WHEN parent_span_id IS NULL THEN name END) LIKE ? ESCAPE '\\'")
            later.append(_like(name))
        if search:  # any span's name
            having.append("SUM(name LIKE ? ESCAPE '\\') > 0")
            later.append(_like(search))
        if since:
            having.append("MIN(start_time) >= ?")
            later.append(since_key(since))
        if until:
            having.append("MIN(start_time) < ?")
            later.append(since_key(until))
        for minimum, expression in ((min_duration_ms, "MAX(duration_ms)"),
                                    (min_tokens, "SUM(total_tokens)"),
                                    (min_spans, "COUNT(*)")):
            if minimum is not None:
                having.append(f"{expression} >= ?")
                later.append(minimum)
        sql = f"""
            SELECT trace_id, MIN(start_time), SUM(total_tokens),
                   MAX(status = 'ERROR'), COUNT(*),
                   MAX(CASE WHEN parent_span_id IS NULL THEN name END),
                   MAX(CASE WHEN parent_span_id IS NULL THEN duration_ms END),
                   MAX(session_id), MAX(customer_id), MAX(config_key),
                   json_group_array(DISTINCT model), MAX(error_message), MAX(duration_ms)
            FROM spans {"WHERE " + " AND ".join(where) if where else ""}
            GROUP BY trace_id {"HAVING " + " AND ".join(having) if having else ""}
            ORDER BY MIN(start_time) {"ASC" if oldest_first else "DESC"} LIMIT ? OFFSET ?"""
        rows = self.query(sql, (*args, *later, max(0, min(limit, 1000)), max(0, offset)))
        return [{"trace_id": r[0], "start_time": r[1], "total_tokens": r[2],
                 "status": "ERROR" if r[3] else "OK", "spans": r[4], "root_name": r[5],
                 "duration_ms": r[6] if r[6] is not None else r[12], "session_id": r[7],
                 "customer_id": r[8], "config_key": r[9],
                 "models": sorted(m for m in json.loads(r[10]) if m is not None),
                 "error_message": r[11]} for r in rows]

    def query(self, sql: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """Rows of a read-only query (for the views of the web UI)."""
        with self._connection() as db:
            return db.execute(sql, tuple(args)).fetchall()

    def trace(self, trace_id: str) -> List[Dict[str, Any]]:
        rows = self.query("SELECT record FROM spans WHERE trace_id = ? ORDER BY start_time",
                          (trace_id,))
        return [readable(json.loads(r[0])) for r in rows]

    # -- custom metrics of sessions --------------------------------------------------------
    def set_metrics(self, session_id: str, config_key: str, values: Dict[str, str]) -> int:
        """Set each metric of a session (its value as JSON text): the latest value per
        field wins. Requests are applied whole, one after the other.

        Returns:
            How many fields were added or changed value.
        """
        with self._write, self._connection() as db, _transaction(db):
            at, before = _now(), db.total_changes  # taken in turn: later requests, later times
            rows = [{"session": session_id, "config": config_key, "field": field,
                     "value": value, "at": at} for field, value in values.items()]
            db.executemany(_SET_METRIC, rows)
            db.executemany(_ADD_METRIC, rows)
            return db.total_changes - before

    def metrics(self, session_ids: Sequence[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """Per session id, per config key, each metric: ``{"value", "updated_at"}``."""
        found: Dict[str, Dict[str, Dict[str, Any]]] = {}
        for start in range(0, len(session_ids), 500):  # SQLite's bound on parameters
            part = session_ids[start:start + 500]
            for session, config, field, value, at in self.query(
                    f"SELECT session_id, config_key, field, value, updated_at FROM metrics "
                    f"WHERE session_id IN ({', '.join('?' * len(part))}) "
                    f"ORDER BY session_id, config_key, field", part):
                by_config = found.setdefault(session, {}).setdefault(config, {})
                by_config[field] = {"value": json.loads(value), "updated_at": at}
        return found

    # -- assignments and versions ---------------------------------------------------------
    def add_assignment(self, body: Dict[str, Any]) -> None:
        with self._write, self._connection() as db:
            db.execute("INSERT OR REPLACE INTO assignments VALUES (?,?,?,?)", (
                str(body.get("config_key")), str(body.get("config_version")),
                str(body.get("session_id")), str(body.get("assigned_model"))))

    def assignments(self) -> List[Tuple[str, str, str, str]]:
        return list(self.query("SELECT * FROM assignments"))

    def version_of(self, kind: str, key: str, body: Dict[str, Any]) -> int:
        """The version number of ``body``: the latest one if unchanged, else a new one.

        Bodies are kept and compared exactly as written, key order included:
        the order of object-shaped variants decides assignments.
        """
        text = json.dumps(body)
        with self._write, self._connection() as db:
            row = db.execute("SELECT version, body FROM versions WHERE kind = ? AND key = ? "
                             "ORDER BY version DESC LIMIT 1", (kind, key)).fetchone()
            if row is not None and row[1] == text:
                return int(row[0])
            version = 1 if row is None else int(row[0]) + 1
            db.execute("INSERT INTO versions VALUES (?,?,?,?)", (kind, key, version, text))
            return version

    def version(self, kind: str, key: str, version: int) -> Optional[Dict[str, Any]]:
        rows = self.query("SELECT body FROM versions WHERE kind = ? AND key = ? AND "
                          "version = ?", (kind, key, version))
        return dict(json.loads(rows[0][0])) if rows else None

    def latest_version(self, kind: str, key: str) -> Optional[Tuple[int, Dict[str, Any]]]:
        """The newest version of ``key`` and its body; None when it has none."""
        rows = self.query("SELECT version, body FROM versions WHERE kind = ? AND key = ? "
                          "ORDER BY version DESC LIMIT 1", (kind, key))
        return (int(rows[0][0]), dict(json.loads(rows[0][1]))) if rows else None

    # -- evaluation runs -------------------------------------------------------------------
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
        rows = [(run_id, i, json.dumps(item, allow_nan=False)) for i, item in enumerate(items)]
        with self._write, self._connection() as db, _transaction(db):
            db.execute("INSERT INTO eval_runs VALUES (?,?,?,?,?,?,?,?)", (
                run_id, at, head["name"], head["description"], head["judge_model"],
                head["dataset_size"], len(rows), json.dumps(head["summary"])))
            db.executemany("INSERT INTO eval_items VALUES (?,?,?)", rows)
        return self.runs(run_id=run_id)[0]

    def runs(self, *, run_id: Optional[str] = None, limit: int = 50,
             offset: int = 0) -> List[Dict[str, Any]]:
        """Runs newest first (or the one ``run_id``), each with its figures, no items."""
        where, args = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        rows = self.query(f"SELECT run_id, created_at, name, description, judge_model, "
                          f"dataset_size, items, summary FROM eval_runs {where} "
                          f"ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                          (*args, max(0, min(limit, 1000)), max(0, offset)))
        return [{"run_id": r[0], "created_at": r[1], "name": r[2], "description": r[3],
                 "judge_model": r[4], "dataset_size": r[5], "items": r[6],
                 **json.loads(r[7])} for r in rows]

    def run(self, run_id: str) -> Optional[Dict[str, Any]]:
        """One run with every item's result (``results``, in the order sent); None if absent."""
        found = self.runs(run_id=run_id)
        if not found:
            return None
        items = self.query("SELECT item FROM eval_items WHERE run_id = ? ORDER BY position",
                           (run_id,))
        return {**found[0], "results": [json.loads(row[0]) for row in items]}
