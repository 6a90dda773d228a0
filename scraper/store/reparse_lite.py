"""A reparse's batch of pages read from a SQLite archive through the stdlib ``sqlite3``
module, and parsed again: the work of ``reviews reparse --jobs N``'s worker processes.

A worker imports this module, the codec of stored bodies and the site parsers, never
SQLAlchemy or Alembic (the import alone cost a worker 0.7 s of start-up, more than
parsing 100 pages); the one writer, in the main process, keeps SQLAlchemy. Pages
are read as ``reparse._read_pages`` reads them (a test compares the two), each
worker on its own connection (SQLite in WAL mode lets it read while the writer
writes). Any other database (PostgreSQL) is read through SQLAlchemy.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from scraper.errors import StoreError
from scraper.store.codec import BodyRow, readable_bodies
from scraper.store.lite import check_sqlite_path, configure_sqlite, file_error
from scraper.store.parsing import Reparsed, reparse_body, stored_page

__all__ = ["BODY_ROWS_SQL", "BODY_ROW_SQL", "PAGE_ROWS_SQL", "close_connections", "read_batch"]

#: A batch's raw pages, in id order (``{marks}``: one ``?`` per id).
PAGE_ROWS_SQL = (
    "SELECT id, final_url, headers, body_sha256, fetched_at, page_kind, review_count, "
    "parse_error, parser_version, records_sha256 FROM raw_pages WHERE id IN ({marks}) "
    "ORDER BY id"
)
#: Their bodies' rows in one query (``{marks}``: one ``?`` per sha256).
BODY_ROWS_SQL = "SELECT sha256, encoding, data FROM raw_bodies WHERE sha256 IN ({marks})"
#: One body's row (a base outside the batch, or one read again alone).
BODY_ROW_SQL = "SELECT encoding, data FROM raw_bodies WHERE sha256 = ?"

#: This process's connection to each archive file it read a batch of (one per reparse).
_connections: dict[str, sqlite3.Connection] = {}


def close_connections() -> None:
    """Close the connections this process opened for batches."""
    while _connections:
        _connections.popitem()[1].close()


def read_batch(job: tuple[str, list[int]]) -> list[Reparsed]:
    """Read the raw pages *job* names (a SQLite file and page ids) with their bodies,
    parse them again, and say which of them would store something new.

    Raises StoreError naming the file when it cannot be read.
    """
    path, ids = job
    try:
        connection = _connection(path)
        connection.execute("BEGIN")  # one snapshot for the pages and their bodies
        try:
            rows = connection.execute(PAGE_ROWS_SQL.format(marks=_marks(ids)), ids).fetchall()
            shas = sorted({str(row[3]) for row in rows})
            body_rows: dict[str, BodyRow] = {
                str(sha): (str(encoding), bytes(data))
                for sha, encoding, data in connection.execute(
                    BODY_ROWS_SQL.format(marks=_marks(shas)), shas
                )
            }
            fetch = functools.partial(_body_row, connection)
            bodies, damaged = readable_bodies([str(row[3]) for row in rows], body_rows, fetch)
        finally:
            connection.execute("COMMIT")
    except sqlite3.Error as error:
        raise file_error(path, error) from error
    done = []
    for row in rows:
        page = stored_page(row[0], row[1], _headers(row[2]), _instant(row[4]), *row[5:8])
        sha = str(row[3])
        if sha in damaged:
            done.append(Reparsed(page, None, "", False, failure=damaged[sha]))
        else:
            done.append(reparse_body(page, bodies[sha], row[9], row[8]))
    return done


def _connection(path: str) -> sqlite3.Connection:
    connection = _connections.get(path)
    if connection is None:
        check_sqlite_path(path, create=False)  # a missing file named as engine names it
        # mode=rw: a file gone meanwhile is an error, never a new empty database.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True)
        configure_sqlite(connection)
        _connections[path] = connection
    return connection


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


def _body_row(connection: sqlite3.Connection, sha256: str) -> BodyRow:
    row = connection.execute(BODY_ROW_SQL, (sha256,)).fetchone()
    if row is None:
        raise StoreError(f"raw body {sha256} is missing from the database")
    return str(row[0]), bytes(row[1])


def _headers(value: Any) -> list[list[str]] | None:
    """``raw_pages.headers`` as SQLAlchemy's JSON type stores it on SQLite (JSON text)."""
    found: list[list[str]] | None = json.loads(value) if isinstance(value, str | bytes) else value
    return found


def _instant(value: Any) -> datetime:
    """A stored instant (SQLite: naive UTC text) as an aware UTC datetime, as
    ``schema.tables.UTCDateTime`` reads it."""
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
