"""The one place that knows SQLite and PostgreSQL spell upserts with their own ``insert``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

__all__ = ["insert", "insert_for"]


def insert(connection: Connection, table: Table) -> Any:
    """Return the dialect's INSERT for *table*, which has ``on_conflict_do_*`` and ``excluded``.

    Both dialects' constructs share that API; the return type is ``Any`` because
    SQLAlchemy types them as two unrelated classes.
    """
    return insert_for(connection.dialect.name, table)


def insert_for(dialect_name: str, table: Table) -> Any:
    """Return the INSERT of *dialect_name* ("sqlite" or "postgresql") for *table*."""
    if dialect_name == "postgresql":
        # Imported here: SQLAlchemy's PostgreSQL dialect (asyncio, asyncpg's module and
        # the rest) costs every command that writes to SQLite about 50 ms of start-up.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)
