"""Opening the archive's database: SQLite (WAL, foreign keys) or PostgreSQL (psycopg 3).

``open_engine`` is the one way the package gets an engine. The first call for a
URL in a process makes sure the database exists and is migrated to the newest
revision (a new database is created on first use); later calls skip that check.

Write transactions go through ``write_transaction``: on SQLite it starts with
``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout instead of
failing with "database is locked" when a read lock cannot be upgraded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from scraper.config import hide_password
from scraper.errors import StoreError
from scraper.store.lite import SQLITE_BUSY_TIMEOUT_MS, check_sqlite_path, configure_sqlite

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "describe_url", "open_engine", "write_transaction"]

#: Execution option that marks a connection as about to write (see ``_sqlite_begin``).
_WRITE_OPTION = "reviews_write"

_migrated: set[str] = set()
_migrated_lock = threading.Lock()


def describe_url(url: str) -> str:
    """Return *url* fit for messages: the password hidden, a SQLite URL as its path."""
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return url
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


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
        from scraper.store.migrate import ensure_current

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
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine, *, foreign_keys: bool = True) -> Iterator[Connection]:
    """Yield a connection inside one write transaction, committed on success.

    On SQLite the write lock is taken at BEGIN (waiting up to the busy timeout).
    Without *foreign_keys*, SQLite does not enforce them for the transaction (a
    schema upgrade that rebuilds tables needs that; the pragma only works outside
    a transaction, so it is set before BEGIN and set back after).
    Raises StoreError naming the database when it refuses the connection or the
    transaction; errors raised by the caller's code pass through unchanged.
    """
    try:
        connection = engine.connect()
    except DBAPIError as error:
        raise store_error(engine, error) from error
    with connection:
        connection.execution_options(**{_WRITE_OPTION: True})
        raw = connection.connection.dbapi_connection if engine.dialect.name == "sqlite" else None
        if raw is not None and not foreign_keys:
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            try:
                transaction = connection.begin()
            except DBAPIError as error:
                raise store_error(engine, error) from error
            with transaction:
                yield connection
        finally:
            if raw is not None and not foreign_keys:
                raw.execute("PRAGMA foreign_keys = ON")


def store_error(engine: Engine, error: SQLAlchemyError) -> StoreError:
    """Return a StoreError naming *engine*'s database for a driver *error*."""
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    where = describe_url(engine.url.render_as_string(hide_password=False))
    return StoreError(f"database {where}: {detail}")
