"""Versioned schema migrations (Alembic) for SQLite and PostgreSQL.

Run at every start of ``fallom serve`` and by ``fallom serve migrate`` (for init
containers): one process at a time migrates, under SQLite's write lock or a
PostgreSQL advisory lock, while any other starting on the same database waits,
then finds the schema current. Files written before migrations existed (0.1.0
and later) have no version table: the first revision brings whichever tables
and columns they have up to the last unversioned schema.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Tuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from fallom.server._db import WRITE, Database, SchemaTooNewError

__all__ = ["HEAD", "current", "upgrade"]

_SCRIPTS = os.path.dirname(os.path.abspath(__file__))
# The advisory lock the PostgreSQL replicas take to migrate: two int4 keys ("fall", "migr").
_LOCK = {"a": 0x66616C6C, "b": 0x6D696772}


def _config(connection: Optional[Connection] = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.attributes["connection"] = connection
    return config


def _head() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package ships its revisions
    return head


HEAD = _head()


def current(connection: Connection) -> Optional[str]:
    """The revision the database is at; None when it has none (new, or before migrations)."""
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def upgrade(engine: Engine, db: Database, repair: Callable[[Connection], None],
            summarise: Callable[[Connection], None]) -> Tuple[Optional[str], str]:
    """Bring the database to :data:`HEAD`, one process at a time.

    Args:
        repair: run last, in the same transaction: creates any table missing at head.
        summarise: makes every derived row (trace summaries) from the stored spans; run
            after the schema is current when a revision asked for it
            (``context.config.attributes["summarise"] = True``), so that code of today
            never writes to the schema of an earlier revision.

    Returns:
        The revision before (None for a new or unversioned database) and after.

    Raises:
        SchemaTooNewError: a newer fallom migrated it; this one does not know its schema.
    """
    with engine.connect().execution_options(**{WRITE: True}) as connection, \
            connection.begin():
        if db.kind == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), _LOCK)
        before = current(connection)
        if before is not None and before not in _known():
            raise SchemaTooNewError(
                f"the database {db.shown} is at schema revision {before}, newer than this "
                f"fallom serve knows (up to {HEAD}): upgrade fallom (pip install -U "
                f"'fallom[server]'), or use another --db")
        config = _config(connection)
        if before != HEAD:
            command.upgrade(config, "head")
        repair(connection)
        if config.attributes.get("summarise"):
            summarise(connection)
    return before, HEAD


def _known() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
