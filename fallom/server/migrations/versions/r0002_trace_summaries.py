"""A summary row per trace and its keys, so the listing reads 50 rows, not every span.

``traces`` holds what ``/api/traces`` shows and filters on (kept by ingest);
``trace_keys`` each session, customer, config and model a trace's spans carry,
with the trace's start, so a filter on one reads its newest traces in index
order; ``session_parts`` each session's figures within one trace, and
``sessions`` those added up with the session's metrics, which the sessions page
reads newest first. Existing spans are summarised
after the last revision (the runner does it when a revision asks).

Revision ID: 0002
Revises: 0001
"""

from typing import Any, List

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _traces() -> List[Any]:
    return [sa.Column("trace_id", sa.Text, primary_key=True), sa.Column("start_time", sa.Text),
            sa.Column("spans", sa.BigInteger, nullable=False), sa.Column("total_tokens",
                                                                          sa.BigInteger),
            sa.Column("errors", sa.BigInteger, nullable=False), sa.Column("root_name", sa.Text),
            sa.Column("root_lower", sa.Text), sa.Column("root_session", sa.Text),
            sa.Column("root_customer", sa.Text),
            sa.Column("root_duration_ms", sa.Float), sa.Column("duration_ms", sa.Float),
            sa.Column("session_id", sa.Text), sa.Column("customer_id", sa.Text),
            sa.Column("config_key", sa.Text), sa.Column("models", sa.Text, nullable=False),
            sa.Column("error_message", sa.Text), sa.Column("names", sa.Text),
            sa.Column("updated_at", sa.Text, nullable=False)]


def _trace_keys() -> List[Any]:
    return [sa.Column("trace_id", sa.Text, nullable=False),
            sa.Column("field", sa.Text, nullable=False), sa.Column("value", sa.Text,
                                                                   nullable=False),
            sa.Column("start_time", sa.Text),
            sa.PrimaryKeyConstraint("trace_id", "field", "value")]


def _session_parts() -> List[Any]:
    return [sa.Column("session_key", sa.Text, nullable=False),
            sa.Column("trace_id", sa.Text, nullable=False), sa.Column("session_id", sa.Text,
                                                                      nullable=False),
            sa.Column("customer_id", sa.Text), sa.Column("config_key", sa.Text),
            sa.Column("spans", sa.BigInteger, nullable=False),
            sa.Column("total_tokens", sa.BigInteger),
            sa.Column("errors", sa.BigInteger, nullable=False),
            sa.Column("first_start", sa.Text), sa.Column("last_start", sa.Text),
            sa.PrimaryKeyConstraint("session_key", "trace_id")]


def _sessions() -> List[Any]:
    return [sa.Column("session_key", sa.Text, primary_key=True),
            sa.Column("session_id", sa.Text, nullable=False), sa.Column("customer_id", sa.Text),
            sa.Column("config_key", sa.Text), sa.Column("traces", sa.BigInteger, nullable=False),
            sa.Column("spans", sa.BigInteger, nullable=False),
            sa.Column("total_tokens", sa.BigInteger), sa.Column("errors", sa.BigInteger),
            sa.Column("first_start", sa.Text), sa.Column("last_start", sa.Text),
            sa.Column("metrics_updated_at", sa.Text), sa.Column("activity", sa.Text)]


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table("traces", *_traces())
    op.create_table("trace_keys", *_trace_keys())
    # newest first is a backward scan: start times descending, those without one last
    start = "start_time NULLS FIRST" if bind.dialect.name == "postgresql" else "start_time"
    op.execute(f"CREATE INDEX traces_start ON traces ({start}, trace_id)")
    op.execute(f"CREATE INDEX traces_errors ON traces ({start}, trace_id) WHERE errors > 0")
    op.execute(f"CREATE INDEX trace_keys_value ON trace_keys (field, value, {start}, trace_id)")
    op.create_table("session_parts", *_session_parts())
    op.create_index("session_parts_trace", "session_parts", ["trace_id"])
    op.create_table("sessions", *_sessions())
    activity = "activity NULLS FIRST" if bind.dialect.name == "postgresql" else "activity"
    op.execute(f"CREATE INDEX sessions_activity ON sessions ({activity}, session_key)")
    op.drop_index("spans_start", "spans")  # the listing reads traces.start_time now
    # made from the stored spans once the schema is current, as ingest makes them
    context.config.attributes["summarise"] = True


def downgrade() -> None:
    op.create_index("spans_start", "spans", ["start_time"])
    op.drop_table("sessions")
    op.drop_table("session_parts")
    op.drop_table("trace_keys")
    op.drop_table("traces")
