"""The store's tables as SQLAlchemy Core sees them (their DDL is in fallom/server/migrations),
and the few helpers every query module shares."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Iterator, Optional, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    MetaData,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

__all__ = ["COLUMNS", "assignments", "chunks", "eval_items", "eval_runs", "index_key",
           "insert", "metrics", "now", "repair", "session_parts", "sessions", "spans",
           "trace_keys", "traces", "versions"]


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
# one row per trace: what the listing shows and filters on, kept by ingest
traces = Table(
    "traces", _meta, Column("trace_id", _Text, primary_key=True), Column("start_time", _Text),
    Column("spans", BigInteger, nullable=False), Column("total_tokens", BigInteger),
    Column("errors", BigInteger, nullable=False), Column("root_name", _Text),
    Column("root_lower", _Text), Column("root_session", _Text), Column("root_customer", _Text),
    Column("root_duration_ms", Float), Column("duration_ms", Float), Column("session_id", _Text),
    Column("customer_id", _Text), Column("config_key", _Text),
    Column("models", _Text, nullable=False), Column("error_message", _Text),
    Column("names", _Text),  # read by no one since search has its own index (revision 0003)
    Column("updated_at", _Text, nullable=False))
# each session, customer, config and model a trace's spans carry, with the trace's start
trace_keys = Table(
    "trace_keys", _meta, Column("trace_id", _Text, primary_key=True),
    Column("field", _Text, primary_key=True), Column("value", _Text, primary_key=True),
    Column("start_time", _Text))
# a trace's figures per session: the sessions page adds these up
session_parts = Table(
    "session_parts", _meta, Column("session_key", _Text, primary_key=True),
    Column("trace_id", _Text, primary_key=True), Column("session_id", _Text, nullable=False),
    Column("customer_id", _Text), Column("config_key", _Text),
    Column("spans", BigInteger, nullable=False), Column("total_tokens", BigInteger),
    Column("errors", BigInteger, nullable=False), Column("first_start", _Text),
    Column("last_start", _Text))
# each session as the sessions page lists it: its parts added up, and its metrics' dates;
# ``activity`` (the later of its last span and its last metric) orders the page
sessions = Table(
    "sessions", _meta, Column("session_key", _Text, primary_key=True),
    Column("session_id", _Text, nullable=False), Column("customer_id", _Text),
    Column("config_key", _Text), Column("traces", BigInteger, nullable=False),
    Column("spans", BigInteger, nullable=False), Column("total_tokens", BigInteger),
    Column("errors", BigInteger), Column("first_start", _Text), Column("last_start", _Text),
    Column("metrics_updated_at", _Text), Column("activity", _Text))
assignments = Table(
    "assignments", _meta, Column("config_key", _Text, primary_key=True),
    Column("config_version", _Text, primary_key=True),
    Column("session_id", _Text, primary_key=True), Column("assigned_model", _Text))
versions = Table(
    "versions", _meta, Column("kind", _Text, primary_key=True),
    Column("key", _Text, primary_key=True), Column("version", BigInteger, primary_key=True),
    Column("body", _Text))
metrics = Table(
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


def repair(connection: Connection) -> None:
    """Tables missing at the current revision (dropped by hand) are made again, empty."""
    _meta.create_all(connection, checkfirst=True)


def insert(connection: Connection, table: Table) -> Any:
    """INSERT with the dialect's ON CONFLICT clauses (both engines have the same ones)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Pieces of at most ``size``: bound parameters per statement are limited."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def now() -> str:
    """The time, UTC, as the SDKs write start times."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_KEY_CHARS = 256  # a longer value is kept as a prefix and a digest: B-tree entries are bounded


def index_key(value: str) -> str:
    """The form a key (a session id, a model...) takes in the summaries' indexes: itself,
    or when too long for a B-tree entry a prefix and a digest (~330 characters at most)."""
    if len(value) <= _KEY_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:_KEY_CHARS]}\u2026{digest}"
