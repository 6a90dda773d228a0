"""Opening the archive for reading: ``sqlite3`` for a SQLite file, else SQLAlchemy.

See ``lite``: the read commands start without SQLAlchemy on SQLite. The engine
(and with it SQLAlchemy, and Alembic) is loaded only for another database, or
for a SQLite file whose schema must be migrated first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from scraper.errors import StoreError
from scraper.store.lite import AlchemySource, Source, SqliteSource, connect_current, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["open_source"]


@contextmanager
def open_source(url: str, engine: Engine | None = None) -> Iterator[Source]:
    """Yield a read-only ``Source`` on the existing archive at *url*, in one read
    transaction (one snapshot of the archive), closed after. With *engine* (already
    open on *url*, and migrated), one of its pooled connections is used instead.

    A database at an older schema revision is migrated first (through ``engine``,
    which loads SQLAlchemy and Alembic for that). Raises StoreError naming the
    database when it does not exist, cannot be opened or is not an archive.
    """
    if engine is not None:
        with engine.connect() as alchemy:
            yield AlchemySource(alchemy)
        return
    path = sqlite_file(url)
    if path is None:
        from scraper.store.engine import open_engine

        engine = open_engine(url, create=False)
        try:
            with engine.connect() as alchemy:
                yield AlchemySource(alchemy)
        finally:
            engine.dispose()
        return
    connection = connect_current(path)
    if connection is None:  # migrated by the engine, or refused with the reason
        from scraper.store.engine import open_engine

        open_engine(url, create=False).dispose()
        connection = connect_current(path)
    if connection is None:  # pragma: no cover - the engine migrated it just now
        raise StoreError(f"database {path}: not at the newest schema revision")
    try:
        connection.execute("BEGIN")
        yield SqliteSource(connection)
    finally:
        connection.close()
