"""``reviews sql``: read-only SQL for power users, enforced by the database itself.

SQLite: the statement runs on its own connection with ``PRAGMA query_only`` on
and an authorizer that only lets reads through (so a ``PRAGMA query_only = 0``
in the statement cannot lift the guard). PostgreSQL: inside a transaction
opened with ``SET TRANSACTION READ ONLY``, rolled back afterwards. A write is
refused by the database with an error, which comes back as a UsageError saying
that the command is read-only. One statement per call, enforced by the drivers
(sqlite3 refuses a second one; PostgreSQL gets a prepared statement).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scraper.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["SqlResult", "read_only_sql"]

# What a read needs from SQLite's authorizer (other actions are denied).
_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


@dataclass(frozen=True, slots=True)
class SqlResult:
    """The column names and a stream of rows (tuples) of one statement."""

    columns: tuple[str, ...]
    rows: Iterator[tuple[Any, ...]]


# Pragmas whose argument names what to describe rather than a new setting.
_DESCRIBING_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "integrity_check",
    "quick_check",
}


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    if action in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 is not None:
        name = arg1.lower()
        # Reading a pragma (no argument) is fine, except the guard itself; setting one is not.
        if name in _DESCRIBING_PRAGMAS or (arg2 is None and name != "query_only"):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _refusal(sql: str, error: BaseException) -> UsageError:
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if "multiple commands" in detail or "one statement at a time" in detail:
        return UsageError(f"reviews sql runs one statement at a time; refused: {sql!r}")
    written = ("read-only", "readonly", "not authorized", "query_only", "prohibited")
    if any(word in detail.lower() for word in written):
        return UsageError(f"reviews sql is read-only; refused: {sql!r} ({detail})")
    return UsageError(f"SQL failed: {detail}")


@contextmanager
def read_only_sql(engine: Engine, sql: str) -> Iterator[SqlResult]:
    """Run one statement read-only; yield its columns and streaming rows.

    Raises UsageError when the statement is empty, writes (refused by the
    database, nothing changes) or fails (syntax, unknown table: the database's
    message is given).
    """
    if not sql.strip():
        raise UsageError("no SQL statement given")
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        cursor: Any = raw.cursor()
        try:
            if engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA query_only = ON")
                driver.set_authorizer(_authorize)
                cursor.execute(sql)  # sqlite3 refuses a second statement itself
            else:
                raw.rollback()  # READ ONLY must be the transaction's first statement
                cursor.execute("SET TRANSACTION READ ONLY")
                # A prepared statement is one statement: "COMMIT; DELETE ..." would
                # otherwise end the read-only transaction and run the rest outside it.
                cursor.execute(sql, prepare=True)
        except Exception as error:
            if _is_driver_error(error):
                raise _refusal(sql, error) from error
            raise
        columns = tuple(d[0] for d in cursor.description or ())
        yield SqlResult(columns, _rows(cursor))
    finally:
        raw.rollback()
        if engine.dialect.name == "sqlite":
            raw.invalidate()  # never hand a guarded connection back to the pool
        raw.close()


def _is_driver_error(error: BaseException) -> bool:
    # The raw DBAPI connection raises the drivers' own errors, not SQLAlchemy's.
    return isinstance(error, sqlite3.Error) or type(error).__module__.startswith("psycopg")


def _rows(cursor: Any) -> Iterator[tuple[Any, ...]]:
    if cursor.description is None:
        return
    while batch := cursor.fetchmany(500):
        yield from (tuple(row) for row in batch)
