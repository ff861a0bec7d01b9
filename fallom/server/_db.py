"""Which database ``fallom serve`` stores in, and engines to reach it.

A file path or ``sqlite:///PATH`` is SQLite (one process; the default), a
``postgresql://`` or ``postgres://`` URL is PostgreSQL (any number of replicas).
Errors out of here and out of the store say which database (the file, or the
host without the password) in words fit for one ``fallom serve: ...`` line.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, TypeVar

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["Database", "DatabaseURLError", "ENV", "SchemaTooNewError", "StoreError",
           "UnavailableError", "database", "engine", "translated"]

ENV = "FALLOM_DATABASE_URL"
ACCEPTED = ("a file path, sqlite:///PATH, postgresql://USER@HOST:PORT/DB or "
            "postgres://USER@HOST:PORT/DB")
_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg")


class DatabaseURLError(ValueError):
    """The URL's scheme is not one the server speaks; the message names those it does."""


class StoreError(Exception):
    """The database cannot be used; the message names it (never a password)."""


class UnavailableError(StoreError):
    """The database cannot take this now (unreachable, gone away, full, locked): try again."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer fallom than this one."""


@dataclass(frozen=True)
class Database:
    """A parsed ``--db``: what to connect to, and how to name it to a person."""

    kind: str  # "sqlite" or "postgresql"
    url: URL
    path: Optional[str] = None  # SQLite's file

    @property
    def shown(self) -> str:
        """The file, or the URL without its password: safe to print and log."""
        if self.path is not None:
            return self.path
        url = self.url
        return URL.create("postgresql", url.username, None, url.host, url.port, url.database,
                          url.query).render_as_string()

    @property
    def host(self) -> Optional[str]:
        """Where PostgreSQL is: host[:port] or the socket directory; None for SQLite."""
        if self.kind == "sqlite":
            return None
        socket = self.url.query.get("host")
        host = self.url.host or (socket if isinstance(socket, str) else None) or "localhost"
        return f"{host}:{self.url.port}" if self.url.port else host

    @property
    def max_workers(self) -> Optional[int]:
        """How many processes may serve it: SQLite has one writer, so 1; None is no limit."""
        return 1 if self.kind == "sqlite" else None


def database(text: Optional[str] = None, *, default_path: Optional[str] = None) -> Database:
    """``--db`` as given, else ``$FALLOM_DATABASE_URL``, else ``default_path``.

    Raises:
        DatabaseURLError: an unknown scheme, or nothing given and no default.
    """
    given = text or os.environ.get(ENV) or default_path
    if not given:
        raise DatabaseURLError(f"no database given: use {ACCEPTED}")
    if "://" not in given:
        return _sqlite(given)
    scheme = given.split("://", 1)[0].lower()
    if scheme == "sqlite":
        path = given.split("://", 1)[1]
        if not path.startswith("/") or path == "/":
            raise DatabaseURLError(f"sqlite:// needs a file: sqlite:///PATH (three slashes), "
                                   f"sqlite:////ABSOLUTE/PATH; accepted: {ACCEPTED}")
        return _sqlite(path[1:])
    if scheme in _POSTGRES:
        try:
            url = make_url(given)
        except exc.ArgumentError:
            raise DatabaseURLError(f"not a valid {scheme}:// URL; accepted: {ACCEPTED}") from None
        return Database("postgresql", url.set(drivername="postgresql+psycopg"))
    raise DatabaseURLError(f"{scheme[:20]}:// is not a database fallom serve can use; "
                           f"accepted: {ACCEPTED}")


def _sqlite(path: str) -> Database:
    return Database("sqlite", URL.create("sqlite", database=path), path)


# -- engines -------------------------------------------------------------------------------
_BUSY_S = 30.0  # how long a SQLite statement waits for another connection's lock
_POOL = 8  # connections kept open for the next request (more are opened, then closed)
WRITE = "fallom_write"  # execution option: a SQLite transaction that takes the write lock now


def engine(db: Database) -> Engine:
    """A pooled engine: SQLite in WAL mode, or PostgreSQL through psycopg 3."""
    if db.kind == "sqlite":
        return _sqlite_engine(db)
    made = create_engine(db.url, pool_size=_POOL, max_overflow=_POOL * 4, pool_timeout=_BUSY_S,
                         pool_pre_ping=True, pool_recycle=3600,
                         connect_args={"connect_timeout": 10,
                                       "application_name": "fallom serve",
                                       # compiling a plan costs more than the short
                                       # queries of a page: ~250 ms for a filter's
                                       "options": "-c jit=off"})
    return made


def _sqlite_engine(db: Database) -> Engine:
    path = str(db.path)
    made = create_engine(db.url, pool_size=_POOL, max_overflow=-1,
                         connect_args={"timeout": _BUSY_S, "check_same_thread": False,
                                       "isolation_level": None})

    @event.listens_for(made, "connect")
    def _connect(connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        _use_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        record.info["file"] = _file(path)

    @event.listens_for(made, "checkout")
    def _checkout(connection: sqlite3.Connection, record: ConnectionPoolEntry,
                  proxy: Any) -> None:
        if record.info.get("file") != _file(path):  # deleted or replaced: its writes would be lost
            raise exc.DisconnectionError("the database file was replaced")

    @event.listens_for(made, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return made


def _file(path: str) -> Tuple[int, int]:
    """Which file is at ``path`` now."""
    try:
        found = os.stat(path)
    except OSError:
        return (-1, -1)
    return (found.st_dev, found.st_ino)


def _use_wal(db: sqlite3.Connection) -> None:
    """WAL mode (kept in the file). Switching needs the file to itself and SQLite
    answers "locked" at once rather than waiting: retried while another server
    starting on the same new file does the same."""
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


# -- errors --------------------------------------------------------------------------------
_SQLITE_PASSING = ("locked", "busy", "full", "i/o", "unable to open", "readonly")

T = TypeVar("T")


def translated(db: Database, call: Callable[[], T]) -> T:
    """``call()``, its database errors said as :class:`StoreError`: :class:`UnavailableError`
    when trying again later may work. Other errors (bugs) go through unchanged."""
    try:
        return call()
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise _said(db, error) from error
    except exc.DatabaseError as error:
        if db.kind == "sqlite" and type(error) is exc.DatabaseError:  # not a database file
            raise StoreError(f"cannot use {db.shown} as the database: {_words(error)}") from error
        raise


def _said(db: Database, error: exc.DBAPIError) -> StoreError:
    words = _words(error)
    if db.kind == "postgresql":
        return UnavailableError(f"cannot use the database at {db.host}: {words}")
    if any(part in words.lower() for part in _SQLITE_PASSING):
        return UnavailableError(f"cannot use {db.shown} as the database: {words}")
    return StoreError(f"cannot use {db.shown} as the database: {words}")


def _words(error: BaseException) -> str:
    """The driver's own message, one line, without SQLAlchemy's SQL and links."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return "; ".join(lines[:2]) or type(original).__name__

