"""A new, empty database per test on each engine the store speaks.

SQLite: a file in the test's temporary directory. PostgreSQL: a database made
for the test on the session's server (the ``postgres_url`` fixture), dropped after.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

ENGINES = ["sqlite", "postgresql"]


def new_postgres_database(server_url: str) -> str:
    """Make an empty database on the server of ``server_url``; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    import psycopg

    parsed = make_url(url)
    server = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of an empty PostgreSQL database, dropped after the test."""
    url = new_postgres_database(postgres_url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each engine in turn: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    url = new_postgres_database(request.getfixturevalue("postgres_url"))
    yield url
    drop_postgres_database(url)
