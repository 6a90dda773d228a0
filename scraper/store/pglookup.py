"""PostgreSQL: rows looked up by a list of keys, one index probe per key, whatever the
planner knows about the table.

``WHERE site = :site AND key IN (...)`` on the unique index ``(site, key)`` is only
planned as an index lookup of each key once the table has statistics. Before its
first ANALYZE (autovacuum off, or a new archive growing faster than autovacuum
analyzes it) PostgreSQL guesses that a site holds a few rows, reads them all through
the index on ``site`` and filters the keys: the existing-reviews lookup of every
imported page read every review of the site (2,400 rows after 120 real pages; over
the first 200 pages 2.6 ms of server CPU a page on average, 0.2 ms this way, and
growing with the archive). A ``LATERAL`` subquery per key with
``LIMIT 1`` (the key is unique, so it changes no result) cannot be flattened into a
join, so each key is one probe of the unique index however the table was analyzed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["bound_values", "rows_by_key"]


def rows_by_key(
    table: sa.Table,
    columns: Sequence[sa.Column[Any]],
    key: sa.Column[Any],
    keys: str,
    where: Sequence[sa.ColumnElement[bool]] = (),
    *,
    lock: bool = False,
) -> sa.Select[Any]:
    """Return ``SELECT`` of *table*'s *columns* (named as they are) from the rows whose
    *key* column is one of the array bound as *keys*, found in the array's order, among
    the rows that meet *where* (conditions under which *key* is unique). With *lock*,
    each row is locked ``FOR UPDATE`` as it is found: bind the keys sorted to lock
    them in key order. Add joins and columns to it as to any select.
    """
    wanted = bound_values(keys, key.type)
    found = sa.select(*columns).where(*where, key == wanted.c.value).limit(1)
    if lock:
        found = found.with_for_update()
    rows = found.lateral(f"found_{table.name}")
    return sa.select(rows).select_from(wanted).join(rows, sa.true())


def bound_values(name: str, kind: sa.types.TypeEngine[Any]) -> Any:
    """Return ``unnest(:name) AS wanted_<name>(value)``: a row per value of the array
    of *kind* bound as *name*, in its order (its column: ``.c.value``)."""
    from sqlalchemy.dialects import postgresql  # (see scraper.store.dialect)

    return (
        sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(kind)))
        .table_valued("value")
        .render_derived(name=f"wanted_{name}")
    )
