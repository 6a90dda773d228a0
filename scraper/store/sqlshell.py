"""``reviews sql``: read-only SQL for power users, enforced by the database itself.

SQLite: the statement runs on its own connection, opened read-only
(``mode=ro``) with ``PRAGMA query_only`` on, an authorizer that lets reads
through (and the schema lookups FTS5 and ``json_each`` make) but not ATTACH,
VACUUM INTO or a pragma that sets something, and a progress handler that stops
the statement when its time budget is spent.

PostgreSQL: a read-only transaction is not enough for a superuser, who can
``COPY ... TO PROGRAM``, signal backends or reload the configuration from a
SELECT. The statement runs after ``SET LOCAL ROLE`` to a NOLOGIN role that may
only read the archive's tables (``READ_ONLY_ROLE``, created and granted on first
use), inside a ``READ ONLY`` transaction with ``statement_timeout``, always rolled
back, on a connection that is thrown away afterwards (so no session state such
as an advisory lock outlives it). The role cannot be lifted by ``RESET ROLE``
or ``set_config('role', ...)`` because statements other than queries and the
functions that change settings or run SQL text are refused before they reach
the server (``check_statement``).

A refusal is a UsageError saying the command is read-only; one statement per
call, enforced by the drivers (sqlite3 refuses a second one; PostgreSQL gets a
prepared statement).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.config import SQL_TIMEOUT, StoreSettings
from scraper.errors import StoreError, UsageError
from scraper.store.sqlrole import READ_ONLY_ROLE, prepare_role

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["READ_ONLY_ROLE", "SqlResult", "check_statement", "read_only_sql"]

# What a read needs from SQLite's authorizer (other actions are denied).
_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}

#: A virtual table's constructor (FTS5, json_each) declares its columns, which SQLite
#: authorizes as an UPDATE of the schema table; the file is read-only anyway.
_SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master"}

#: SQLite steps between two looks at the clock (a few microseconds of work).
_PROGRESS_STEPS = StoreSettings().sql_progress_steps

#: PostgreSQL's largest statement_timeout (a 32-bit count of milliseconds, 24.8 days).
_PG_MAX_TIMEOUT_MS = 2**31 - 1

#: The statements reviews sql runs on PostgreSQL: queries, plans and settings shown.
_PG_QUERIES = ("select", "with", "values", "table", "explain", "show")

#: Functions refused on PostgreSQL, with why. The first group could lift the
#: guard itself (change the role or read-only mode, or run SQL text the check never
#: saw); the others are refused by the role too, but deserve a plain word.
_PG_UNSAFE: tuple[tuple[str, str], ...] = (
    (r"set_config", "it changes settings (the role, the read-only mode)"),
    (r"query_to_xml\w*|cursor_to_xml\w*|ts_stat|ts_rewrite", "it runs SQL given as text"),
    (r"dblink\w*", "it connects to other databases"),
    (r"pg_terminate_backend|pg_cancel_backend", "it signals server processes"),
    (r"pg_reload_conf|pg_rotate_logfile|pg_promote|pg_switch_wal", "it changes the server"),
    (
        r"pg_create_\w+|pg_drop_\w+|pg_replication_\w+|pg_logical_\w+|pg_wal_replay_\w+",
        "it changes the server",
    ),
    (
        r"pg_backup_\w+|pg_start_backup|pg_stop_backup|pg_log_backend_memory_contexts",
        "it changes the server",
    ),
    (r"pg_stat_reset\w*|pg_import_system_collations", "it changes the server"),
    (r"pg_notify", "it sends notifications"),
    (r"pg_(?:try_)?advisory_\w+", "it takes locks"),
    (r"lo_\w+", "it reads or writes large objects or server files"),
    (
        r"pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|pg_file_\w+",
        "it reads server files",
    ),
)
_PG_UNSAFE_NAMES = re.compile(
    r"\b(" + "|".join(f"(?:{pattern})" for pattern, _ in _PG_UNSAFE) + r")\b", re.IGNORECASE
)
#: U&"..." and U&'...' spell names and strings with escapes no text check can read.
_UNICODE_ESCAPES = re.compile(r"\bu&\s*['\"]", re.IGNORECASE)


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
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 is not None:
        name = arg1.lower()
        # Reading a pragma (no argument) is fine, except the guard itself; setting one is not.
        if name in _DESCRIBING_PRAGMAS or (arg2 is None and name != "query_only"):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def check_statement(sql: str) -> None:
    """Refuse, before it reaches PostgreSQL, what the read-only role cannot make safe.

    Only queries (SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW) run: ``SET ROLE``,
    ``COPY``, ``NOTIFY``, ``CHECKPOINT``, ``DO`` and the rest are refused, as are the
    functions of ``_PG_UNSAFE``, wherever they appear (even in a string). Raises
    UsageError saying what was refused and why.
    """
    rest = _skip_leading_noise(sql)
    word = re.match(r"[A-Za-z_]+", rest)
    keyword = word.group(0).lower() if word else rest[:1]
    if keyword not in _PG_QUERIES:
        raise UsageError(
            f"reviews sql is read-only: it runs {', '.join(k.upper() for k in _PG_QUERIES)} "
            f"statements; refused: {sql!r} ({keyword.upper() or 'nothing to run'})"
        )
    if _UNICODE_ESCAPES.search(sql):
        raise UsageError(f"reviews sql is read-only; refused: {sql!r} (U& escapes are not run)")
    found = _PG_UNSAFE_NAMES.search(sql)
    if found:
        name = found.group(1)
        why = next(w for p, w in _PG_UNSAFE if re.fullmatch(p, name, re.IGNORECASE))
        raise UsageError(f"reviews sql is read-only; refused: {sql!r} ({name}: {why})")


def _skip_leading_noise(sql: str) -> str:
    """Return *sql* from its first word: spaces, ``(`` and comments skipped
    (PostgreSQL's ``/* */`` comments nest, so ``/* /* */ SELECT */ COPY`` is a COPY)."""
    at = 0
    while at < len(sql):
        if sql[at].isspace() or sql[at] == "(":
            at += 1
        elif sql.startswith("--", at):
            end = sql.find("\n", at)
            at = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", at):
            depth, at = 1, at + 2
            while at < len(sql) and depth:
                if sql.startswith("/*", at):
                    depth, at = depth + 1, at + 2
                elif sql.startswith("*/", at):
                    depth, at = depth - 1, at + 2
                else:
                    at += 1
        else:
            break
    return sql[at:]


def _refusal(sql: str, error: BaseException, timeout: float) -> UsageError:
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    lowered = detail.lower()
    if "multiple commands" in detail or "one statement at a time" in detail:
        return UsageError(f"reviews sql runs one statement at a time; refused: {sql!r}")
    if "statement timeout" in lowered or lowered == "interrupted":
        return UsageError(
            f"reviews sql stopped the statement after {timeout:g} s (timeout): {sql!r}",
            parameter="timeout",
        )
    written = (
        "read-only",
        "readonly",
        "not authorized",
        "authorization denied",
        "query_only",
        "prohibited",
        "permission denied",
        "must be superuser",
        "privileges of",
    )
    if any(word in lowered for word in written):
        return UsageError(f"reviews sql is read-only; refused: {sql!r} ({detail})")
    return UsageError(f"SQL failed: {detail}")


@contextmanager
def read_only_sql(engine: Engine, sql: str, *, timeout: float = SQL_TIMEOUT) -> Iterator[SqlResult]:
    """Run one statement read-only, for at most *timeout* seconds; yield its columns
    and streaming rows.

    Raises UsageError when the statement is empty, writes or would act on the server
    (refused, nothing changes), runs past *timeout*, or fails (syntax, unknown table:
    the database's message is given); StoreError when the PostgreSQL read-only role
    cannot be set up and the connecting role is too powerful to run it without one.
    """
    if not sql.strip():
        raise UsageError("no SQL statement given")
    if not timeout > 0 or timeout == float("inf"):
        raise UsageError(
            f"timeout must be more than 0 seconds, not {timeout!r}", parameter="timeout"
        )
    if engine.dialect.name == "sqlite":
        with _sqlite_read_only(engine, sql, timeout) as result:
            yield result
        return
    check_statement(sql)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        try:
            _pg_enter_guard(raw, cursor, engine, timeout)
        except Exception as error:
            if _is_driver_error(error):
                detail = (str(error).strip() or type(error).__name__).splitlines()[0]
                raise StoreError(
                    f"reviews sql: cannot set up the read-only guard: {detail}"
                ) from error
            raise
        try:
            # A prepared statement is one statement: "COMMIT; DELETE ..." would
            # otherwise end the read-only transaction and run the rest outside it.
            cursor.execute(sql, prepare=True)
        except Exception as error:
            if _is_driver_error(error):
                raise _refusal(sql, error, timeout) from error
            raise
        columns = tuple(d[0] for d in cursor.description or ())
        yield SqlResult(columns, _rows(cursor))
    finally:
        try:
            raw.rollback()
        finally:
            raw.invalidate()  # never hand a connection that ran user SQL back to the pool
            raw.close()


def _pg_enter_guard(raw: Any, cursor: Any, engine: Engine, timeout: float) -> None:
    """Open the read-only transaction the statement runs in: as the read-only role
    (when there is one), with *timeout* as its ``statement_timeout``."""
    from psycopg import sql as pgsql

    role = prepare_role(raw, cursor, engine)
    raw.rollback()  # READ ONLY must be the transaction's first statement
    cursor.execute("SET TRANSACTION READ ONLY")
    if role is not None:
        cursor.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(role)))
    cursor.execute(
        "SELECT set_config('statement_timeout', %s, true)",
        (f"{min(int(timeout * 1000), _PG_MAX_TIMEOUT_MS)}ms",),
    )


@contextmanager
def _sqlite_read_only(engine: Engine, sql: str, timeout: float) -> Iterator[SqlResult]:
    from scraper.store.engine import SQLITE_BUSY_TIMEOUT_MS

    path = Path(engine.url.database or "").expanduser().resolve()
    try:
        connection = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as error:
        raise StoreError(f"database {path}: {error}") from error
    deadline = time.monotonic() + timeout
    try:
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA query_only = ON")
        connection.set_authorizer(_authorize)
        connection.set_progress_handler(
            lambda: 1 if time.monotonic() > deadline else 0, _PROGRESS_STEPS
        )
        try:
            cursor = connection.execute(sql)  # sqlite3 refuses a second statement itself
        except sqlite3.Error as error:
            raise _refusal(sql, error, timeout) from error
        except (sqlite3.Warning, OverflowError, ValueError) as error:
            raise _refusal(sql, error, timeout) from error
        columns = tuple(d[0] for d in cursor.description or ())
        yield SqlResult(columns, _sqlite_rows(cursor, sql, timeout))
    finally:
        connection.close()


def _sqlite_rows(cursor: Any, sql: str, timeout: float) -> Iterator[tuple[Any, ...]]:
    # Rows are computed as they are fetched: a runaway query stops here, mid-stream.
    try:
        yield from _rows(cursor)
    except sqlite3.Error as error:
        raise _refusal(sql, error, timeout) from error


def _is_driver_error(error: BaseException) -> bool:
    # The raw DBAPI connection raises the drivers' own errors, not SQLAlchemy's.
    return isinstance(error, sqlite3.Error) or type(error).__module__.startswith("psycopg")


def _rows(cursor: Any) -> Iterator[tuple[Any, ...]]:
    if cursor.description is None:
        return
    while batch := cursor.fetchmany(500):
        yield from (tuple(row) for row in batch)
