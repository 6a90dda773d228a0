"""PostgreSQL full text after revision 0005: the same vectors from a cheaper expression.

Revision 0005 replaces only punctuation (not whitespace) before ``to_tsvector``; these
tests hold it to giving the vectors revision 0002's expression gave, character by
character and on stored archives, and to carrying an archive's vectors and search
results through the upgrade.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import HISTORY, HISTORY_URL

from scraper.records import FetchedPage
from scraper.store import fts
from scraper.store.engine import open_engine, write_transaction
from scraper.store.ingest import ingest_page
from scraper.store.migrate import alembic_config, schema_state, upgrade

REVISION_0005 = importlib.import_module(
    "scraper.schema.migrations.versions.0005_cheaper_pg_fulltext"
)


def test_the_query_side_names_the_newest_expression() -> None:
    assert fts.PG_BODY_VECTOR == REVISION_0005._VECTOR
    assert (
        "ADD COLUMN body_fts tsvector" in REVISION_0005._vector_column(REVISION_0005._VECTOR, "")[2]
    )
    assert f"INDEX {fts.PG_FTS_INDEX}" in REVISION_0005._vector_column(REVISION_0005._VECTOR, "")[3]
    fulltext = importlib.import_module("scraper.schema.migrations.versions.0002_fulltext")
    assert REVISION_0005._VECTOR_0002 in fulltext._POSTGRES_UP[0]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _same_vectors(engine: sa.Engine, texts_sql: str) -> tuple[int, int]:
    """(texts whose two vectors differ, texts) over ``texts_sql`` (a query of column s)."""
    old, new = (v.replace("body", "s") for v in (REVISION_0005._VECTOR_0002, REVISION_0005._VECTOR))
    with engine.connect() as conn:
        differ, total = conn.exec_driver_sql(
            f"SELECT count(*) FILTER (WHERE ({old}) IS DISTINCT FROM ({new})), count(*) "
            f"FROM ({texts_sql}) AS t"
        ).one()
    return int(differ), int(total)


def test_whitespace_runs_and_punctuation_give_the_same_vectors(pg: sa.Engine) -> None:
    texts = [
        "well-written, 8.5/10 \t\n\n  see example.com (or mail a@b.org)",
        "don't   stop\u3000\u3000now\u00a0\u00a0ok  \r\n- - -  end",
        "café\u2014crème  brûlée\n\n\n\u2028next   «quoted»  ＂full＂",
        "  leading and trailing  \n",
        "x\u1680y\u180ez\u0085w\u200bv \u205f u",
    ]
    values = ", ".join(
        f"({sa.literal(t).compile(pg, compile_kwargs={'literal_binds': True})})" for t in texts
    )
    assert _same_vectors(pg, f"SELECT s FROM (VALUES {values}) AS v(s)") == (0, len(texts))


@pytest.mark.slow
def test_every_code_point_gives_the_same_vector_in_either_expression(pg: sa.Engine) -> None:
    # Each character between words, doubled, beside whitespace and punctuation.
    texts = (
        "SELECT c.f || chr(cp) || c.g || chr(cp) || c.h AS s "
        "FROM generate_series(1, 1114111) AS cp, (VALUES ('a', 'b', 'c'), ('1', '.2 ', ' 3'), "
        "('x \n', '', '-y'), ('é', ' ü', '')) AS c(f, g, h) "
        "WHERE cp NOT BETWEEN 55296 AND 57343"
    )
    differ, total = _same_vectors(pg, texts)
    assert total == 4 * (1114111 - 2048)
    assert differ == 0


def _history(engine: sa.Engine, start: int, count: int) -> None:
    sources = sorted(HISTORY.glob("*.html"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(start, start + count):
        body = sources[number % len(sources)].read_bytes()
        url = f"{HISTORY_URL}?copy={number}"
        # Every copy under its own review ids: each page adds new reviews.
        body = body.replace(b"reviews.php?id=", f"reviews.php?id={number}0".encode())
        page = FetchedPage(url, url, 200, (), body, at + timedelta(days=number))
        ingest_page(engine, page)


_VECTORS = sa.text("SELECT key, body_fts::text FROM reviews ORDER BY key")
_OLD_VECTORS = sa.text(
    f"SELECT key, ({REVISION_0005._VECTOR_0002})::text FROM reviews ORDER BY key"
)
_SEARCH = sa.text("SELECT key FROM reviews WHERE body_fts @@ to_tsquery('simple', :q) ORDER BY key")
_QUERIES = ("'lantern'", "'the' <-> 'crew'", "'harbour' & 'signal'", "'well' <-> 'written'")


def _searches(conn: sa.Connection) -> dict[str, list[str]]:
    return {q: list(conn.execute(_SEARCH, {"q": q}).scalars()) for q in _QUERIES}


def test_upgrade_keeps_every_vector_and_search_and_new_rows_match(postgres_url: str) -> None:
    engine = open_engine(postgres_url, migrate=False)
    try:
        with write_transaction(engine) as conn:
            command.upgrade(alembic_config(conn), "0004")
        _history(engine, 0, 3)
        with engine.connect() as conn:
            vectors, searches = conn.execute(_VECTORS).all(), _searches(conn)
        assert len(vectors) >= 6 and any(searches.values())
        assert upgrade(engine).current == ("0004",)
        assert schema_state(engine).up_to_date
        with engine.connect() as conn:
            assert conn.execute(_VECTORS).all() == vectors
            assert _searches(conn) == searches
            index = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reviews_body_fts'"
            ).scalar_one()
            assert "gin (body_fts)" in index
        _history(engine, 3, 2)  # stored through the new expression
        with engine.connect() as conn:
            now = conn.execute(_VECTORS).all()
            assert len(now) > len(vectors)
            assert now == conn.execute(_OLD_VECTORS).all()
            lz4 = conn.exec_driver_sql(REVISION_0005._HAS_LZ4).first() is not None
            methods = dict(
                conn.exec_driver_sql(
                    "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = "
                    "'reviews'::regclass AND attname IN ('body', 'body_fts')"
                ).all()
            )
        assert methods == dict.fromkeys(("body", "body_fts"), "l" if lz4 else "")
    finally:
        engine.dispose()


def test_downgrade_gives_back_the_0002_column(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    try:
        _history(engine, 0, 2)
        with engine.connect() as conn:
            vectors = conn.execute(_VECTORS).all()
        with write_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0004")
        with engine.connect() as conn:
            assert conn.execute(_VECTORS).all() == vectors
            expression = conn.exec_driver_sql(
                "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
                "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
                "WHERE a.attname = 'body_fts' AND d.adrelid = 'reviews'::regclass"
            ).scalar_one()
        assert "\\s" in expression
    finally:
        engine.dispose()
