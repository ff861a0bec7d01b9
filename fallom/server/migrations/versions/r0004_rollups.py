"""The rollups of LLM calls behind ``/api/overview`` (see fallom.server._rollups): a row
per 1, 5 and 30 minutes and 3 hours, model and config key, made here from the stored
spans; ingest and retention keep them from then on. SQLite: WITHOUT ROWID, so a range
of the key is read where it is stored.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from fallom.server._rollups import FIGURES, rebuild

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollups", sa.Column("grain", sa.BigInteger, nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("config_key", sa.Text, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in FIGURES),
        sa.PrimaryKeyConstraint("grain", "start_s", "model", "config_key"),
        sqlite_with_rowid=False)
    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollups")
