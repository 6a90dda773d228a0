"""Revision 0006: PostgreSQL stores raw bodies out of line without a try at pglz
(``STORAGE EXTERNAL``); bodies read back the same before, after and across a downgrade,
and SQLite's schema does not change."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from conftest import MAL

from scraper.records import FetchedPage
from scraper.store.bodies import load_page
from scraper.store.engine import open_engine, write_transaction
from scraper.store.ingest import ingest_page
from scraper.store.migrate import alembic_config, schema_state

AT = datetime(2026, 4, 1, tzinfo=UTC)
_STORAGE = (
    "SELECT attstorage FROM pg_attribute "
    "WHERE attrelid = 'raw_bodies'::regclass AND attname = 'data'"
)
_COMPRESSED = (
    "SELECT count(*) FILTER (WHERE pg_column_compression(data) IS NOT NULL) FROM raw_bodies"
)


def _store(engine: sa.Engine, number: int) -> int:
    url = f"https://myanimelist.net/anime/{number}/x/reviews"
    body = (MAL / "anime-reviews-current.html").read_bytes()
    body = body.replace(b"</body>", f"<!-- copy {number} --></body>".encode())
    return ingest_page(engine, FetchedPage(url, url, 200, (), body, AT)).raw_page_id


def _bodies(engine: sa.Engine, ids: list[int]) -> list[bytes]:
    with engine.connect() as connection:
        pages = [load_page(connection, raw_page_id) for raw_page_id in ids]
    return [page.body for page in pages if page is not None]


def test_postgresql_stores_raw_bodies_as_they_are_and_reads_them_across_a_downgrade(
    postgres_url: str,
) -> None:
    engine = open_engine(postgres_url)
    try:
        ids = [_store(engine, 1), _store(engine, 2)]
        bodies = _bodies(engine, ids)
        with engine.connect() as connection:
            assert connection.exec_driver_sql(_STORAGE).scalar_one() == "e"
            assert connection.exec_driver_sql(_COMPRESSED).scalar_one() == 0
        with write_transaction(engine) as connection:
            command.downgrade(alembic_config(connection), "0005")
        with engine.connect() as connection:
            assert connection.exec_driver_sql(_STORAGE).scalar_one() == "x"
        assert schema_state(engine).current == ("0005",)
        ids.append(_store(engine, 3))  # stored the way 0005 stores it
        assert _bodies(engine, ids[:2]) == bodies
        with write_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), "head")
        with engine.connect() as connection:
            assert connection.exec_driver_sql(_STORAGE).scalar_one() == "e"
        assert _bodies(engine, ids)[:2] == bodies
        assert len(_bodies(engine, ids)) == 3
    finally:
        engine.dispose()


def _sqlite_schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_sqlite_schema_is_the_same_before_and_after_0006(tmp_path: Path) -> None:
    path = tmp_path / "reviews.db"
    engine = open_engine(f"sqlite:///{path}", migrate=False)
    try:
        with write_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), "0005")
        before = _sqlite_schema(path)
        with write_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), "0006")
        assert _sqlite_schema(path) == before
        assert schema_state(engine).current == ("0006",)
    finally:
        engine.dispose()
