"""Connections to an open database: write transactions, and errors that name it.

Below both ``engine.py`` (which opens the database and migrates it) and
``migrate.py`` (which upgrades it inside a write transaction), so neither imports
the other back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from scraper.errors import StoreError
from scraper.interrupts import Shielded

__all__ = ["WRITE_OPTION", "describe_url", "store_error", "write_transaction"]

#: Execution option that marks a connection as about to write: on SQLite, the engine
#: begins its transaction with ``BEGIN IMMEDIATE`` (see ``engine._configure_sqlite``).
WRITE_OPTION = "reviews_write"


def describe_url(url: str) -> str:
    """Return *url* fit for messages: the password hidden, a SQLite URL as its path."""
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return url
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


@contextmanager
def write_transaction(engine: Engine, *, foreign_keys: bool = True) -> Iterator[Connection]:
    """Yield a connection inside one write transaction, committed on success.

    On SQLite the write lock is taken at BEGIN (waiting up to the busy timeout).
    Without *foreign_keys*, SQLite does not enforce them for the transaction (a
    schema upgrade that rebuilds tables needs that; the pragma only works outside
    a transaction, so it is set before BEGIN and set back after).
    Raises StoreError naming the database when it refuses the connection or the
    transaction; errors raised by the caller's code pass through unchanged. A stop
    signal (``interrupts.raise_or_defer``) arriving inside is raised as it ends.
    """
    with Shielded():  # a stop signal waits for the commit or the rollback (see interrupts)
        try:
            connection = engine.connect()
        except DBAPIError as error:
            raise store_error(engine, error) from error
        with connection:
            connection.execution_options(**{WRITE_OPTION: True})
            sqlite = engine.dialect.name == "sqlite"
            raw = connection.connection.dbapi_connection if sqlite else None
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
