"""Opening the archive's database: SQLite (WAL, foreign keys) or PostgreSQL (psycopg 3).

``open_engine`` is the one way the package gets an engine. The first call for a
URL in a process makes sure the database exists and is migrated to the newest
revision (a new database is created on first use); later calls skip that check.

Write transactions go through ``write_transaction`` (``connection.py``, re-exported
here): on SQLite it starts with ``BEGIN IMMEDIATE``, so concurrent writers queue on
the busy timeout instead of failing with "database is locked" when a read lock
cannot be upgraded. The migrations use those helpers too, below this module.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from scraper.config import StoreSettings, hide_password
from scraper.errors import StoreError
from scraper.store.connection import WRITE_OPTION, describe_url, store_error, write_transaction
from scraper.store.migrate import ensure_current

__all__ = ["describe_url", "open_engine", "store_error", "write_transaction"]

#: How long a SQLite writer waits for another one before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = StoreSettings().sqlite_busy_timeout_ms

_migrated: set[str] = set()
_migrated_lock = threading.Lock()


def open_engine(url: str, *, migrate: bool = True, create: bool = True) -> Engine:
    """Return an engine for *url*, creating and migrating the database on first use.

    A SQLite database gets WAL journaling, ``foreign_keys=ON`` and a busy timeout on
    every connection. With *migrate* (the default) the database is upgraded to the
    newest schema revision once per URL and process. Without *create*, a SQLite
    file that does not exist yet is an error rather than a new database.

    Raises StoreError (naming the database) for a bad URL, an unreachable server,
    an unwritable path, or a database whose schema this version cannot use.
    """
    engine = _create_engine(url, create=create)
    if migrate and url not in _migrated:
        with _migrated_lock:
            if url not in _migrated:
                try:
                    ensure_current(engine)
                except BaseException:
                    engine.dispose()
                    raise
                _migrated.add(url)
    return engine


def _create_engine(url: str, *, create: bool) -> Engine:
    where = describe_url(url)
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StoreError(f"not a database URL: {hide_password(url)!r} ({error})") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite_path(parsed.database, create=create)
        engine = sa.create_engine(parsed)
        _configure_sqlite(engine)
    elif backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise StoreError(f"{where}: use a postgresql+psycopg:// URL (psycopg 3)")
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
        except ImportError as error:
            raise StoreError(
                f"{where}: PostgreSQL needs psycopg: pip install 'review-archiver[postgres]'"
            ) from error
    else:
        raise StoreError(f"{where}: unsupported database {backend!r} (use SQLite or PostgreSQL)")
    return engine


def _check_sqlite_path(database: str | None, *, create: bool) -> None:
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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process; only an OS crash may lose
        # the last commits, never consistency.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
