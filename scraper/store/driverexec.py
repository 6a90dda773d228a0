"""SQLAlchemy Core statements run straight through the ``sqlite3`` driver (SQLite writes).

A batch of ``reviews import`` runs some twenty Core statements a page, and
SQLAlchemy's execution layer (its parameters built and processed row by row, its
result objects) cost about as much CPU as SQLite itself. ``DriverConnection``
stands in for the batch's Connection inside ``write_page``: each statement is
compiled by SQLAlchemy once per shape (its parameters' names, the lengths of its
``IN`` lists), and then run through the batch's ``sqlite3`` cursor with the
compiled SQL text, which ``sqlite3``'s statement cache keeps prepared, and with
the compiled statement's own bind and result processors: the same SQL and the
same values as SQLAlchemy sends, so the same rows (``tests/test_store_driver.py``
compares every table with the engine's path).

What SQLAlchemy does beyond that stays SQLAlchemy's: a statement built anew for
each call (seen once: compiling it here would cost more than running it), one
whose INSERT or UPDATE fills a column from a Python-side default, and
``exec_driver_sql`` go to the Connection underneath. An error of the driver is
raised as SQLAlchemy would raise it (a ``DBAPIError``), so the caller's handling
is the same on both paths. The compiled statement is read below SQLAlchemy's public
API (``pyproject.toml`` bounds its version); a release without those parts makes
every statement go through SQLAlchemy, as before this module.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from scraper.config import StoreSettings

__all__ = [
    "DriverConnection",
    "StatementCache",
    "assigns_rowids",
    "driver_connection",
    "inserted_ids",
    "statement_cache",
]

#: Statements seen once, held so that their ids name them until seen again (or until
#: this many have been seen, when they are forgotten).
_SEEN_ONCE = StoreSettings().driver_seen_once

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one ``?`` of the compiled SQL takes its value from."""

    key: str  # the parameter's name (a bindparam's key)
    index: int  # its element in an IN list, or -1 for the value itself
    default: Any  # the bindparam's own value (a literal), when the caller gives none
    process: _Processor | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One statement compiled for one shape of its parameters."""

    sql: str
    #: The values of the ``?`` for one row of parameters, in order.
    values: Callable[[Mapping[str, Any]], list[Any]]
    #: Result columns: a row type and each column's processor (None: none returned).
    row: Any
    results: tuple[_Processor | None, ...] | None


class _Rows:
    """The rows a statement returned, with the part of SQLAlchemy's Result API the
    store uses."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise _no_single_row(len(self._rows))
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> _Rows:
        return _Rows([row[0] for row in self._rows])


def _no_single_row(count: int) -> Exception:
    from sqlalchemy.exc import MultipleResultsFound, NoResultFound

    if count == 0:
        return NoResultFound("No row was found when one was required")
    return MultipleResultsFound("Multiple rows were found when exactly one was required")


class StatementCache:
    """The statements compiled for one dialect, kept across transactions."""

    def __init__(self) -> None:
        #: Each statement compiled (held, so that its id names it), by id.
        self.held: dict[int, ClauseElement] = {}
        #: Statements seen once (held as well), by id.
        self.seen: dict[int, ClauseElement] = {}
        #: (statement id, parameter names, many) -> the keys of its IN lists.
        self.lists: dict[tuple[Any, ...], tuple[str, ...]] = {}
        #: (statement id, parameter names, many, IN lengths) -> the compiled form.
        self.prepared: dict[tuple[Any, ...], _Prepared | None] = {}
        #: SQLAlchemy's compiled statements lack what this module reads: run none here.
        self.unreadable = False


#: The statements compiled for each dialect (one per SQLite engine).
_caches: weakref.WeakKeyDictionary[Any, StatementCache] = weakref.WeakKeyDictionary()


def driver_connection(connection: Connection) -> Connection:
    """*connection* (in its transaction) as a DriverConnection, typed as the Connection
    it stands in for (the store's writes call only what it has); *connection* itself
    when it is not SQLite through the ``sqlite3`` module."""
    if not isinstance(connection.connection.dbapi_connection, sqlite3.Connection):
        return connection
    return cast(Connection, DriverConnection(connection, statement_cache(connection.dialect)))


def inserted_ids(connection: Connection, statement: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert *rows* with *statement* (a plain INSERT into a table with one integer
    primary key); return their new ids in the rows' order.

    Through a DriverConnection they are the rowids (``DriverConnection.insert_ids``);
    anywhere else one row's key is SQLAlchemy's ``inserted_primary_key`` and more rows'
    come from RETURNING of the key (in the rows' order).
    """
    if isinstance(connection, DriverConnection):
        return connection.insert_ids(statement, rows)
    if len(rows) == 1:  # one row: its key from the cursor, no RETURNING to read
        (key,) = connection.execute(statement, rows[0]).inserted_primary_key or (None,)
        if key is None:
            raise ValueError(f"no primary key for the row inserted into {statement.table}")
        return [int(key)]
    return [int(new) for new in connection.execute(_returning_key(statement), rows).scalars()]


def assigns_rowids(connection: Connection) -> bool:
    """Whether ``inserted_ids`` on *connection* reads the rowids (a batch's writer on
    SQLite, ``driver_connection``) rather than running RETURNING."""
    return isinstance(connection, DriverConnection)


@functools.cache
def _returning_key(statement: Any) -> Any:
    """*statement* returning its table's primary key, one row per row in their order."""
    (key,) = statement.table.primary_key.columns
    return statement.returning(key, sort_by_parameter_order=True)


def statement_cache(dialect: Any) -> StatementCache:
    """The statements compiled for *dialect* (an engine's), made on first use."""
    cache = _caches.get(dialect)
    if cache is None:
        cache = _caches[dialect] = StatementCache()
    return cache


class DriverConnection:
    """A SQLite Connection's stand-in for the store's writes (see the module's doc).

    Lives as long as the Connection's transaction; runs what it can on *connection*'s
    ``sqlite3`` connection, the rest on *connection* itself.
    """

    def __init__(self, connection: Connection, cache: StatementCache) -> None:
        """*cache* holds the statements compiled so far (the caller keeps it for the
        engine, so that it outlives one transaction)."""
        if connection.dialect.name != "sqlite":
            raise ValueError("DriverConnection runs on SQLite only")
        self.connection = connection
        self.dialect = connection.dialect
        self.engine = connection.engine
        raw = connection.connection.dbapi_connection
        if not isinstance(raw, sqlite3.Connection):
            raise ValueError("DriverConnection runs on the sqlite3 driver only")
        self._cursor: sqlite3.Cursor = raw.cursor()
        self._cache: StatementCache = cache

    def exec_driver_sql(self, sql: str, parameters: Any = None) -> Any:
        return self.connection.exec_driver_sql(sql, parameters)

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run *statement* with *parameters* (a mapping, or a list of them for many
        rows) as ``Connection.execute`` does; return its rows."""
        many = isinstance(parameters, list)
        rows: Sequence[Mapping[str, Any]] = (
            parameters if many else [parameters] if parameters is not None else [{}]
        )
        prepared = self._prepared(statement, rows[0], many) if rows else None
        if prepared is None:
            return self.connection.execute(statement, parameters)
        try:
            return self._run(prepared, rows)
        except sqlite3.Error as error:
            raise DBAPIError.instance(
                prepared.sql, rows, error, sqlite3.Error, dialect=self.dialect, ismulti=many
            ) from error

    def insert_ids(self, statement: Any, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Run INSERT *statement* (no RETURNING) once for each of *rows*; return the
        rowid each was given (``lastrowid``), in order.

        The rowids of rows written one by one, without RETURNING: SQLite's RETURNING
        cost more than the insert itself (0.95-1.37 against 0.42-0.58 ms for a real
        page's 20 reviews, without their full-text index). Raises ``DBAPIError`` as
        ``execute`` does.
        """
        prepared = self._prepared(statement, rows[0], False) if rows else None
        if prepared is None or prepared.results is not None:
            return [int(self.connection.execute(statement, row).lastrowid) for row in rows]
        cursor = self._cursor
        ids: list[int] = []
        try:
            for row in rows:
                cursor.execute(prepared.sql, prepared.values(row))
                if cursor.lastrowid is None:  # not a rowid table: no id to give
                    raise ValueError(f"no rowid for a row inserted by {prepared.sql[:60]!r}")
                ids.append(cursor.lastrowid)
        except sqlite3.Error as error:
            raise DBAPIError.instance(
                prepared.sql, rows, error, sqlite3.Error, dialect=self.dialect, ismulti=True
            ) from error
        return ids

    def _run(self, prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> _Rows:
        cursor = self._cursor
        if prepared.results is None:
            if len(rows) == 1:
                cursor.execute(prepared.sql, prepared.values(rows[0]))
            else:
                cursor.executemany(prepared.sql, [prepared.values(row) for row in rows])
            return _Rows([])
        found: list[Any] = []
        make, processors = prepared.row, prepared.results
        for row in rows:  # one at a time: executemany returns no rows
            for values in cursor.execute(prepared.sql, prepared.values(row)):
                found.append(
                    make(
                        *(
                            value if process is None or value is None else process(value)
                            for process, value in zip(processors, values, strict=True)
                        )
                    )
                )
        return _Rows(found)

    def _prepared(self, statement: Any, first: Mapping[str, Any], many: bool) -> _Prepared | None:
        """The compiled form of *statement* for parameters shaped like *first*, or None
        when SQLAlchemy itself must run it."""
        cache = self._cache
        if cache.held.get(id(statement)) is not statement:
            # Compiled only once seen twice: a statement built for one call is not.
            if not isinstance(statement, ClauseElement) or not _is_executable(statement):
                return None
            if cache.seen.get(id(statement)) is not statement:
                if len(cache.seen) >= _SEEN_ONCE:
                    cache.seen.clear()
                cache.seen[id(statement)] = statement
                return None
            cache.held[id(statement)] = statement
        if cache.unreadable:
            return None
        named = (id(statement), tuple(first), many)
        try:
            lists = cache.lists.get(named)
            if lists is None:
                lists = cache.lists[named] = _list_keys(statement, first, many, self.dialect)
            shape = (*named, *(len(first[key]) for key in lists))
            if shape in cache.prepared:
                return cache.prepared[shape]
            prepared = cache.prepared[shape] = _compile(statement, first, many, self.dialect)
        except AttributeError:
            # The compiled statement is read below SQLAlchemy's public API (its bind
            # processors, post-compile expansion, result columns): a release that
            # moved them runs every statement through SQLAlchemy, slower, never wrong.
            cache.unreadable = True
            return None
        return prepared


def _list_keys(
    statement: ClauseElement, first: Mapping[str, Any], many: bool, dialect: Any
) -> tuple[str, ...]:
    """The parameters of *statement* that are IN lists (expanded when it runs)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(first), for_executemany=many)
    assert isinstance(compiled, SQLCompiler)
    expanding = compiled.post_compile_params | compiled.literal_execute_params
    return tuple(sorted({bind.key for bind in expanding if bind.key in first}))


def _row_type(names: list[str]) -> Any:
    """A row of these columns: a tuple whose items are also attributes, as SQLAlchemy's."""
    return namedtuple("Row", names, rename=True)


def _is_executable(statement: ClauseElement) -> bool:
    return bool(getattr(statement, "is_dml", False) or getattr(statement, "is_select", False))


def _binder(
    slots: Sequence[_Slot], first: Mapping[str, Any]
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """The function that gives the ``?`` values of one row of parameters (shaped like
    *first*)."""
    if not slots:
        return lambda row: []
    if any(slot.index >= 0 for slot in slots):  # IN lists: element by element
        return functools.partial(_values, slots)
    # Every value from the row, or the statement's own (a literal's) when the row has
    # none: one C call takes them all, then the few processors run.
    take = operator.itemgetter(*(slot.key for slot in slots))
    single = len(slots) == 1
    processed = tuple((n, slot.process) for n, slot in enumerate(slots) if slot.process)
    own = {slot.key: slot.default for slot in slots if slot.key not in first}

    def values(row: Mapping[str, Any]) -> list[Any]:
        try:
            found = take({**own, **row} if own else row)
        except KeyError:  # a row without a value the first one had: its default
            return _values(slots, row)
        found = [found] if single else list(found)
        for n, process in processed:
            found[n] = process(found[n])
        return found

    return values


def _remembering(process: _Processor) -> _Processor:
    """*process* (of an immutable value: a time) remembering its last value's result:
    a page's rows repeat the same capture time in every row."""
    last: list[Any] = [_NOTHING, None]

    def remembered(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return remembered


_NOTHING = object()


def _values(slots: Sequence[_Slot], row: Mapping[str, Any]) -> list[Any]:
    values = []
    for slot in slots:
        value = row.get(slot.key, slot.default)
        if slot.index >= 0:
            value = value[slot.index]
        if slot.process is not None:
            value = slot.process(value)
        values.append(value)
    return values


def _compile(
    statement: ClauseElement, first: Mapping[str, Any], many: bool, dialect: Any
) -> _Prepared | None:
    """Compile *statement* as SQLAlchemy does for parameters like *first*; None for a
    statement this module does not run (Python-side defaults, keys it does not know)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(first), for_executemany=many)
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        return None
    if any(bind.key in first for bind in compiled.literal_execute_params):
        return None  # rendered into the SQL text from this call's values
    sql, names = compiled.string, list(compiled.positiontup)
    processors: Mapping[str, Any] = compiled._bind_processors
    expanded: dict[str, list[str]] = {}
    if compiled.post_compile_params or compiled.literal_execute_params:
        state = compiled._process_parameters_for_postcompile(
            compiled.construct_params(dict(first), _check=False)
        )
        sql, names = state.statement, list(state.positiontup or ())
        processors = state.processors
        expanded = {name: list(parts) for name, parts in state.parameter_expansion.items()}
    element_of = {
        part: (name, i) for name, parts in expanded.items() for i, part in enumerate(parts)
    }
    slots = []
    for name in names:
        source, index = element_of.get(name, (name, -1))
        bind = compiled.binds.get(source)
        if bind is None:
            return None
        if bind.key not in first and (bind.required or bind.callable is not None):
            return None
        process = processors.get(name)
        if process is not None and bind.type._type_affinity is sa.DateTime:
            process = _remembering(process)
        slots.append(_Slot(bind.key, index, bind.value, process))
    results = None
    make_row: Any = None
    if compiled._result_columns:
        columns = compiled._result_columns
        results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
        make_row = _row_type([column.keyname for column in columns])
    elif getattr(compiled, "returning", None) or getattr(statement, "is_select", False):
        return None  # returns rows this module cannot describe
    return _Prepared(sql, _binder(slots, first), make_row, results)
