"""The full-text index of spans (see fallom.server._search), filled from the stored spans.

SQLite: ``span_search`` (a span's words, its trace) and the FTS5 table ``span_fts`` over
it, kept in step by triggers. PostgreSQL: ``span_search`` with the words as a tsvector
and a GIN index. Both: an index by trace, which retention deletes by and the listing
probes trace by trace. The stored spans are indexed here, 2,000 at a time.

Revision ID: 0003
Revises: 0002
"""

from typing import Any, Dict, List, Optional

import sqlalchemy as sa
from alembic import op

from fallom.server._search import insert_words, span_words

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 2000
_SQLITE = (
    "CREATE TABLE span_search (id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, "
    "body TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE span_fts USING fts5(body, content='span_search', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')",
    "CREATE TRIGGER span_search_added AFTER INSERT ON span_search BEGIN "
    "INSERT INTO span_fts (rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER span_search_deleted AFTER DELETE ON span_search BEGIN "
    "INSERT INTO span_fts (span_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
)
_POSTGRES = (
    "CREATE TABLE span_search (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "trace_id TEXT NOT NULL, body TSVECTOR NOT NULL)",
)


def _fill(bind: sa.engine.Connection) -> None:
    """Index every stored span, in batches by span id (memory stays bounded)."""
    after: Optional[str] = None
    columns = "span_id, trace_id, name, model, error_message, record"
    while True:
        where = "" if after is None else "WHERE span_id > :after"
        rows: List[Any] = list(bind.execute(sa.text(
            f"SELECT {columns} FROM spans {where} ORDER BY span_id LIMIT :batch"),
            {"after": after, "batch": _BATCH}).mappings())
        if not rows:
            return
        made: List[Dict[str, Any]] = [{"trace_id": row["trace_id"], "words": found}
                                      for row in rows if (found := span_words(row))]
        insert_words(bind, made)
        after = rows[-1]["span_id"]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)
    _fill(bind)
    op.execute("CREATE INDEX span_search_trace ON span_search (trace_id)")
    if postgres:  # made once filled: quicker than kept row by row
        op.execute("CREATE INDEX span_search_body ON span_search USING gin (body)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE span_fts")
    op.drop_table("span_search")
