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

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from scraper.config import hide_password
from scraper.errors import StoreError
from scraper.interrupts import Shielded
from scraper.store.connection import WRITE_OPTION, describe_url, store_error, write_transaction
from scraper.store.lite import SQLITE_BUSY_TIMEOUT_MS, check_sqlite_path, configure_sqlite
from scraper.store.migrate import ensure_current

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "close_engine",
    "describe_url",
    "open_engine",
    "store_error",
    "write_transaction",
]

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


def close_engine(engine: Engine) -> None:
    """Close *engine*'s connections. A stop signal arriving meanwhile is raised after
    (``interrupts``): raised inside the driver's close, SQLAlchemy's pool would log it
    with a traceback for every connection it was closing."""
    with Shielded():
        engine.dispose()


def _create_engine(url: str, *, create: bool) -> Engine:
    where = describe_url(url)
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StoreError(f"not a database URL: {hide_password(url)!r} ({error})") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        check_sqlite_path(parsed.database, create=create)
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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
