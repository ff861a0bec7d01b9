"""The schema fallom serve made before migrations (0.1.0 to 0.2.x), made whole.

Such files have no version table, and whichever tables and span columns their
release made: each missing one is added here (a span column filled from the
stored records), so every earlier file reaches the same schema.

Revision ID: 0001
Revises: none
"""

from typing import Any, Callable, Dict, List, Tuple

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# span columns added after 0.1.0's first schema: name, type, the record field that holds it
_ADDED: Tuple[Tuple[str, Any, str], ...] = (
    ("model", sa.Text, "model"), ("error_message", sa.Text, "error_message"),
    ("kind", sa.Text, "kind"), ("ttft_ms", sa.Float, "time_to_first_token_ms"),
    ("prompt_key", sa.Text, "prompt_key"), ("prompt_version", sa.BigInteger, "prompt_version"),
    ("prompt_ab_test_key", sa.Text, "prompt_ab_test_key"),
    ("prompt_variant_index", sa.BigInteger, "prompt_variant_index"))
_PG_TYPES = {sa.Text: "TEXT", sa.Float: "DOUBLE PRECISION", sa.BigInteger: "BIGINT"}


def _spans() -> List[sa.Column[Any]]:
    return [sa.Column("span_id", sa.Text, primary_key=True),
            sa.Column("trace_id", sa.Text, nullable=False), sa.Column("parent_span_id", sa.Text),
            sa.Column("name", sa.Text, nullable=False), sa.Column("session_id", sa.Text),
            sa.Column("customer_id", sa.Text), sa.Column("config_key", sa.Text),
            sa.Column("status", sa.Text), sa.Column("start_time", sa.Text),
            sa.Column("duration_ms", sa.Float), sa.Column("total_tokens", sa.BigInteger),
            sa.Column("record", sa.Text, nullable=False),
            *(sa.Column(name, kind) for name, kind, _ in _ADDED)]


def _assignments() -> List[Any]:
    return [sa.Column("config_key", sa.Text), sa.Column("config_version", sa.Text),
            sa.Column("session_id", sa.Text), sa.Column("assigned_model", sa.Text),
            sa.PrimaryKeyConstraint("config_key", "config_version", "session_id")]


def _versions() -> List[Any]:
    return [sa.Column("kind", sa.Text), sa.Column("key", sa.Text),
            sa.Column("version", sa.BigInteger), sa.Column("body", sa.Text),
            sa.PrimaryKeyConstraint("kind", "key", "version")]


def _metrics() -> List[Any]:
    return [sa.Column("session_id", sa.Text, nullable=False),
            sa.Column("config_key", sa.Text, nullable=False),
            sa.Column("field", sa.Text, nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("session_id", "config_key", "field")]


def _eval_runs() -> List[Any]:
    return [sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("name", sa.Text, nullable=False), sa.Column("description", sa.Text),
            sa.Column("judge_model", sa.Text), sa.Column("dataset_size", sa.BigInteger),
            sa.Column("items", sa.BigInteger, nullable=False),
            sa.Column("summary", sa.Text, nullable=False)]


def _eval_items() -> List[Any]:
    return [sa.Column("run_id", sa.Text, nullable=False),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.Column("item", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("run_id", "position")]


_TABLES: Dict[str, Callable[[], List[Any]]] = {
    "spans": _spans, "assignments": _assignments, "versions": _versions, "metrics": _metrics,
    "eval_runs": _eval_runs, "eval_items": _eval_items}
# (name, table, columns, PostgreSQL method): session and customer ids have no length
# limit, which a B-tree entry on PostgreSQL has; a hash index has none
_INDEXES = (("spans_trace", "spans", ["trace_id"], "btree"),
            ("spans_customer", "spans", ["customer_id"], "hash"),
            ("spans_session", "spans", ["session_id"], "hash"),
            ("spans_start", "spans", ["start_time"], "btree"),
            ("eval_runs_created", "eval_runs", ["created_at"], "btree"))


def upgrade() -> None:
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    for name, made in _TABLES.items():
        if name not in tables:
            op.create_table(name, *made())
    if "spans" in tables:
        _add_span_columns(bind)
    for name, table, columns, method in _INDEXES:
        if name not in {index["name"] for index in sa.inspect(bind).get_indexes(table)}:
            op.create_index(name, table, columns, postgresql_using=method)


def _add_span_columns(bind: sa.Connection) -> None:
    have = {column["name"] for column in sa.inspect(bind).get_columns("spans")}
    for name, kind, field in _ADDED:
        if name in have:
            continue
        op.add_column("spans", sa.Column(name, kind))
        if bind.dialect.name == "sqlite":
            op.execute(f"UPDATE spans SET {name} = json_extract(record, '$.{field}')")
        else:
            op.execute(f"UPDATE spans SET {name} = CAST(CAST(record AS json) ->> '{field}' "
                       f"AS {_PG_TYPES[kind]})")


def downgrade() -> None:
    raise NotImplementedError("the first revision is the schema before migrations")
