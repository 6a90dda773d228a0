"""SQLite through the stdlib ``sqlite3`` module, and the ``Source`` interface of the
read side: run SQL text with named ``:param`` parameters, get tuples back.

The read commands (``reviews query``, ``stats``, ``export``) have a start-up goal
(< 0.15 s for the whole process) that importing SQLAlchemy alone nearly spends, so
they read a SQLite file with ``sqlite3`` (``SqliteSource``; the same connection
settings as ``engine``'s, which takes them from here, and the schema revision
checked in plain SQL) and any other database through SQLAlchemy
(``AlchemySource``). ``source.open_source`` picks one for a URL.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.store.revision import VERSION_TABLE, scripts_head

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "Source",
    "check_sqlite_path",
    "configure_sqlite",
    "connect_current",
    "file_error",
    "sqlite_file",
]

#: How long a SQLite writer waits for another one before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = StoreSettings().sqlite_busy_timeout_ms

_PLAIN_SQLITE = "sqlite:///"


def file_error(path: str, error: sqlite3.Error) -> StoreError:
    """The StoreError for *error* on the SQLite file *path*: the file named, the first
    line of what SQLite said."""
    text = str(error).strip()
    return StoreError(f"database {path}: {text.splitlines()[0] if text else repr(error)}")


def sqlite_file(url: str) -> str | None:
    """Return the file of a plain ``sqlite:///path`` URL (no driver, no query), else None."""
    if not url.startswith(_PLAIN_SQLITE) or "?" in url:
        return None
    return url[len(_PLAIN_SQLITE) :]


def check_sqlite_path(database: str | None, *, create: bool) -> None:
    """Raise StoreError when *database* cannot hold an archive (see ``engine.open_engine``)."""
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database cannot hold an archive: give a file")
    if "\x00" in database:
        raise StoreError(f"{database!r}: not a file name (it holds a NUL character)")
    path = Path(database).expanduser()
    # os.path's checks answer False for a name the system cannot even look up.
    if not create and not os.path.exists(path):
        raise StoreError(f"{database}: no database there yet (reviews db upgrade creates one)")
    if os.path.exists(path) and not os.path.isfile(path):
        # SQLite would open a device or FIFO and write an archive into nothing.
        raise StoreError(f"{database}: not a database file (a folder, device or FIFO)")
    folder = Path(database).expanduser().resolve().parent
    if not folder.is_dir():
        raise StoreError(f"{database}: folder {folder} does not exist")


def configure_sqlite(connection: sqlite3.Connection) -> None:
    """Set what every connection to an archive has: WAL, foreign keys, a busy timeout,
    and transactions under our control (no implicit BEGIN by the sqlite3 module)."""
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives a killed process; only an OS crash may lose
    # the last commits, never consistency.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


class Source(Protocol):
    """A read-only connection that runs SQL text with named parameters."""

    dialect_name: str
    #: The driver's errors, for the caller to name what it could not read.
    errors: tuple[type[Exception], ...]

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Return every row of *sql*."""

    def execute(self, sql: str) -> None:
        """Run *sql*, a statement that returns no rows (``SET LOCAL ...``)."""

    def chunks(
        self, sql: str, params: dict[str, Any], size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the rows of *sql* *size* at a time, streamed (constant memory)."""


class SqliteSource:
    """A ``Source`` on a ``sqlite3`` connection."""

    dialect_name = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params or {}).fetchall()

    def execute(self, sql: str) -> None:
        self.connection.execute(sql)

    def chunks(
        self, sql: str, params: dict[str, Any], size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        cursor = self.connection.execute(sql, params)
        try:
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            cursor.close()


class AlchemySource:
    """A ``Source`` on a SQLAlchemy connection (PostgreSQL, or SQLite by a URL with options)."""

    def __init__(self, connection: Connection) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        self.connection = connection
        self.dialect_name = connection.dialect.name
        self.errors: tuple[type[Exception], ...] = (SQLAlchemyError,)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        return [tuple(row) for row in self.connection.execute(sa.text(sql), params or {})]

    def execute(self, sql: str) -> None:
        self.connection.exec_driver_sql(sql)

    def chunks(
        self, sql: str, params: dict[str, Any], size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        import sqlalchemy as sa

        result = self.connection.execution_options(yield_per=size).execute(sa.text(sql), params)
        for rows in result.partitions():
            yield [tuple(row) for row in rows]


def connect_current(path: str) -> sqlite3.Connection | None:
    """Return a configured connection to the archive file *path*, or None when its
    schema is not at the newest revision (``engine.open_engine`` migrates it).

    Raises StoreError naming the file when it is missing or cannot be read.
    """
    check_sqlite_path(path, create=False)
    try:
        connection = sqlite3.connect(path)
        configure_sqlite(connection)
        if _current(connection) == (scripts_head(),):
            return connection
        connection.close()
    except sqlite3.Error as error:
        raise file_error(path, error) from error
    return None


def _current(connection: sqlite3.Connection) -> tuple[str, ...]:
    """Return the revisions in the database's version table (none when it has none)."""
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()
    if found is None:
        return ()
    return tuple(row[0] for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}"))
