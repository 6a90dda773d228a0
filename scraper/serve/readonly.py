"""A read-only engine for ``reviews serve``: the database itself refuses writes.

SQLite: the file is opened through a ``mode=ro`` URI (the driver cannot write it)
with ``PRAGMA query_only`` on as well; WAL databases stay readable while a
crawler writes. PostgreSQL: every session starts with
``default_transaction_read_only = on``, so each transaction is READ ONLY.
Neither creates nor migrates the database; a database whose schema is not the
one this version reads is refused with a message saying what to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from scraper.errors import StoreError
from scraper.store.engine import SQLITE_BUSY_TIMEOUT_MS, describe_url

__all__ = ["open_read_only"]


def open_read_only(url: str) -> Engine:
    """Return an engine on *url* that cannot write, checked to hold a current archive.

    Raises StoreError naming the database when it does not exist, cannot be
    reached, or is not at this version's schema revision.
    """
    where = describe_url(url)
    try:
        parsed = sa.make_url(url)
    except ArgumentError as error:
        raise StoreError(f"not a database URL: {url!r}") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite(parsed.database, where)
    elif backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise StoreError(f"{where}: use a postgresql+psycopg:// URL (psycopg 3)")
        engine = sa.create_engine(parsed, pool_pre_ping=True)
        event.listen(engine, "connect", _postgres_read_only)
    else:
        raise StoreError(f"{where}: unsupported database {backend!r} (use SQLite or PostgreSQL)")
    _check_schema(engine, where)
    return engine


def _sqlite(database: str | None, where: str) -> Engine:
    if not database or database == ":memory:":
        raise StoreError("reviews serve needs an archive file, not an in-memory database")
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise StoreError(f"{where}: no archive there (reviews import or crawl makes one)")
    engine = sa.create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true")
    event.listen(engine, "connect", _sqlite_read_only)
    return engine


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _postgres_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET default_transaction_read_only = on")
    cursor.close()
    dbapi_connection.commit()


def _check_schema(engine: Engine, where: str) -> None:
    from scraper.store.migrate import schema_state

    try:
        state = schema_state(engine)
    except (StoreError, SQLAlchemyError) as error:
        engine.dispose()
        raise StoreError(f"{where}: cannot read the archive: {error}") from error
    if not state.up_to_date:
        engine.dispose()
        found = ", ".join(state.current) or "no schema"
        raise StoreError(
            f"{where}: the archive is at {found}, this version reads {state.head}: "
            "run reviews db upgrade first (reviews serve never writes)"
        )
