"""PostgreSQL: many rows of one table in one statement, bound as one array per column.

``INSERT ... SELECT * FROM unnest(:a, :b, ...)`` takes a page's rows as a few arrays.
Its text is the same however many rows there are, so psycopg converts it once and
the server prepares it once per connection (psycopg prepares a statement run five
times). An executemany of a RETURNING insert became one multi-row VALUES whose
text grows with the rows (20 columns of 20 reviews: 400 parameters), which psycopg
does not cache: splitting that text again cost about 5 ms of client CPU a page, and
the server parsed and planned it anew every time.

The arrays are bound with each column's own SQLAlchemy type (``ARRAY`` of it), so
values are converted exactly as a row-by-row insert converts them (JSON serialized
the same way, ``None`` in a JSON column stored as JSON ``null``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

__all__ = ["array_rows", "columns_of", "execute_arrays", "unnest_insert"]

#: Bound arrays by parameter name, each with the column whose type its values have.
Columns = Mapping[str, "sa.Column[Any]"]


def columns_of(table: sa.Table, names: Sequence[str]) -> dict[str, sa.Column[Any]]:
    """Return *table*'s columns *names*, each bound under its own name."""
    return {name: table.c[name] for name in names}


def array_rows(columns: Columns, *, ordinality: bool = False) -> Any:
    """Return ``unnest(:a, :b, ...) AS anon(a, b)``: one row per position of the arrays
    bound under the names of *columns* (with its position as ``ordinality``)."""
    arrays = sa.func.unnest(*(_array(name, column) for name, column in columns.items()))
    if ordinality:
        rows = arrays.table_valued(*columns, with_ordinality="ordinality")
    else:
        rows = arrays.table_valued(*columns)
    return rows.render_derived()


def unnest_insert(table: sa.Table, names: Sequence[str]) -> Any:
    """Return PostgreSQL's INSERT into *table*'s columns *names* from the rows of the
    arrays bound under those names, in their order; it has ``on_conflict_do_*``. Run
    it with ``execute_arrays``."""
    rows = array_rows(columns_of(table, names), ordinality=True)
    select = sa.select(*(rows.c[name] for name in names)).order_by(rows.c.ordinality)
    from sqlalchemy.dialects import postgresql  # (see scraper.store.dialect)

    return postgresql.insert(table).from_select(list(names), select)


def _array(name: str, column: sa.Column[Any]) -> Any:
    # A JSON value may itself be a list, which an ARRAY of JSON would take for a
    # dimension: JSON columns are bound as their texts and cast here.
    from sqlalchemy.dialects import postgresql  # (see scraper.store.dialect)

    bound = sa.Text() if isinstance(column.type, sa.JSON) else column.type
    parameter = sa.bindparam(name, type_=postgresql.ARRAY(bound))
    return sa.cast(parameter, postgresql.ARRAY(column.type))


def execute_arrays(
    connection: Connection, statement: Any, columns: Columns, rows: Sequence[Any]
) -> CursorResult[Any]:
    """Run *statement* (an ``unnest_insert``, or a statement over ``array_rows``) over
    *rows*, whose values are bound as the arrays of *columns*.

    The arrays go in binary: psycopg escapes every quote and backslash of an array in
    text form through a regexp callback, which on review bodies cost more than the
    rest of the page's statements. Values are converted as a row-by-row statement
    converts them: by the column type's own bind rules; a JSON value becomes the text
    it stores (the dialect's serializer; ``None`` is JSON ``null`` unless the column
    says ``none_as_null``); numbers the column's Python type (a binary array holds
    one type). Raises what those rules raise (a naive time: ValueError).
    """
    dialect = connection.dialect
    sql, constants = _driver_sql(statement, dialect)
    parameters = dict(constants)
    for name, column in columns.items():
        convert = _converter(column.type, dialect)
        values = [row[name] for row in rows]
        parameters[name] = values if convert is None else [convert(v) for v in values]
    return connection.exec_driver_sql(sql, parameters)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


#: Each statement's driver SQL, per driver (not per engine: engines come and go).
_COMPILED: dict[tuple[Any, str], tuple[str, tuple[tuple[str, Any], ...]]] = {}


def _driver_sql(statement: Any, dialect: sa.Dialect) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The statement's SQL with binary placeholders, and its constant parameters."""
    key = (statement, dialect.driver)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        constants = tuple((k, v) for k, v in compiled.params.items() if v is not None)
        found = _COMPILED[key] = (_PLACEHOLDER.sub(r"%(\1)b", compiled.string), constants)
    return found


def _converter(kind: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Any:
    """How a value of a column of type *kind* is bound into its array, or None as it is."""
    if isinstance(kind, sa.JSON):
        dumps = getattr(dialect, "_json_serializer", None) or json.dumps
        keep_null = kind.none_as_null
        return lambda v: None if v is None and keep_null else dumps(v)
    # The type's own rules first (UTCDateTime refuses naive times and gives UTC).
    process = kind._cached_bind_processor(dialect)
    number: Callable[[Any], Any] | None = (
        float if isinstance(kind, sa.Float) else int if isinstance(kind, sa.Integer) else None
    )
    if process is None and number is None:
        return None

    def convert(value: Any) -> Any:
        if process is not None:
            value = process(value)
        return value if value is None or number is None else number(value)

    return convert
