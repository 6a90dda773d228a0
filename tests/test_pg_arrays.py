"""PostgreSQL: rows bound as arrays (``store.pgrows``) are stored exactly as the
row-by-row statements store them, awkward values included, and keep the upsert's rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import MAL

from scraper.records import FetchedPage
from scraper.schema.tables import review_observations, reviews
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page
from scraper.store.pgrows import columns_of, execute_arrays
from scraper.store.statements import (
    OBSERVATION_COLUMNS,
    REVIEW_COLUMNS,
    observations_upsert,
    observations_upsert_arrays,
    reviews_upsert,
    reviews_upsert_arrays,
)

AT = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[sa.Engine]:
    engine = open_engine(postgres_url)
    body = (MAL / "anime-reviews-current.html").read_bytes()
    url = "https://myanimelist.net/anime/1/x/reviews"
    ingest_page(engine, FetchedPage(url, url, 200, (), body, AT))
    try:
        yield engine
    finally:
        engine.dispose()


def _review_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    item, author, page = conn.execute(
        sa.text("SELECT item_id, author_id, last_raw_page_id FROM reviews LIMIT 1")
    ).one()
    awkward = [
        ("a", 'quote " and \\ backslash, {braces}, NULL', None, 10, {"k": [1, None]}),
        ("b", None, {"n": 1.5}, 8.5, None),
        ("c", "é ü \u3000 \x01 tab\tnew\nline" * 50, {}, None, [1, "x"]),
        ("d", "", {"overall": 2}, 7, "text"),
    ]
    return [
        {
            "site": "myanimelist",
            "key": f"arrays-{key}",
            "url": f"https://example.invalid/{key}",
            "item_id": item,
            "author_id": author,
            "item_type": None if key == "b" else "anime",
            "date_text": "2020-01-01",
            "date": datetime(2020, 1, 1, tzinfo=UTC) if key != "c" else None,
            "title": body,
            "rating_value": rating,
            "rating_best": 10,
            "rating_worst": 1.0,
            "body": body,
            "body_sha256": None,
            "reactions": reactions,
            "source": "mal-current",
            "extra": extra,
            "first_seen_at": AT + timedelta(days=1),
            "last_seen_at": AT + timedelta(days=1),
            "last_raw_page_id": page,
        }
        for key, body, reactions, rating, extra in awkward
    ]


_DUMP_REVIEWS = sa.text(
    "SELECT site, key, url, item_id, author_id, item_type, date_text, date, title, "
    "rating_value, rating_best, rating_worst, body, body_sha256, reactions::text, source, "
    "extra::text, first_seen_at, last_seen_at, last_raw_page_id, body_fts::text "
    "FROM reviews WHERE key LIKE 'arrays-%' ORDER BY key"
)
_DUMP_OBSERVATIONS = sa.text(
    "SELECT r.key, o.raw_page_id, o.observed_at, o.author_name, o.rating_value, "
    "o.reactions::text, o.tags::text, o.body_sha256, o.extra::text FROM review_observations o "
    "JOIN reviews r ON r.id = o.review_id WHERE r.key LIKE 'arrays-%' ORDER BY r.key"
)


def _write(conn: sa.Connection, arrays: bool) -> list[tuple[Any, ...]]:
    rows = _review_rows(conn)
    if arrays:
        written = execute_arrays(
            conn, reviews_upsert_arrays(), columns_of(reviews, REVIEW_COLUMNS), rows
        )
    else:
        written = conn.execute(reviews_upsert("postgresql"), rows)
    ids = {key: review_id for review_id, _, key, *_ in written}
    observations = [
        {
            "review_id": ids[row["key"]],
            "raw_page_id": row["last_raw_page_id"],
            "observed_at": row["last_seen_at"],
            "author_name": row["body"],
            "rating_value": row["rating_value"],
            "reactions": row["reactions"],
            "tags": ["Recommended", 'with "quotes"'] if row["key"] != "arrays-b" else [],
            "body_sha256": None,
            "extra": row["extra"],
        }
        for row in rows
    ]
    if arrays:
        statement = observations_upsert_arrays()
        execute_arrays(
            conn, statement, columns_of(review_observations, OBSERVATION_COLUMNS), observations
        )
    else:
        conn.execute(observations_upsert("postgresql"), observations)
    return conn.execute(_DUMP_REVIEWS).all() + conn.execute(_DUMP_OBSERVATIONS).all()


def test_arrays_store_what_rows_store(pg: sa.Engine) -> None:
    dumps = []
    for arrays in (False, True):
        with pg.connect() as conn, conn.begin() as transaction:
            dumps.append(_write(conn, arrays))
            transaction.rollback()
    assert len(dumps[0]) == 8
    assert dumps[1] == dumps[0]


def test_arrays_keep_the_newer_capture_on_conflict(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        rows = _review_rows(conn)
        execute_arrays(conn, reviews_upsert_arrays(), columns_of(reviews, REVIEW_COLUMNS), rows)
        older = [row | {"title": "older", "last_seen_at": AT} for row in rows]
        assert not execute_arrays(
            conn, reviews_upsert_arrays(), columns_of(reviews, REVIEW_COLUMNS), older
        ).all()  # an older capture changes nothing and returns no row
        later = {"title": "newer", "first_seen_at": AT + timedelta(days=9)}
        newer = [row | later | {"last_seen_at": AT + timedelta(days=9)} for row in rows]
        written = execute_arrays(
            conn, reviews_upsert_arrays(), columns_of(reviews, REVIEW_COLUMNS), newer
        )
        # Each row written says the first sighting it keeps: the older capture's.
        assert [first_seen for *_, first_seen in written] == [row["first_seen_at"] for row in rows]
        titles = conn.execute(
            sa.text("SELECT DISTINCT title FROM reviews WHERE key LIKE 'arrays-%'")
        ).scalars()
        assert set(titles) == {"newer"}


def test_arrays_refuse_a_naive_time_as_rows_do(pg: sa.Engine) -> None:
    for arrays in (False, True):
        with pg.connect() as conn, conn.begin():
            rows = [row | {"last_seen_at": datetime(2026, 3, 1)} for row in _review_rows(conn)]
            with pytest.raises((ValueError, sa.exc.StatementError), match="naive datetime"):
                if arrays:
                    execute_arrays(
                        conn, reviews_upsert_arrays(), columns_of(reviews, REVIEW_COLUMNS), rows
                    )
                else:
                    conn.execute(reviews_upsert("postgresql"), rows)


def test_a_pages_array_statements_are_prepared_once_per_connection(pg: sa.Engine) -> None:
    body = (MAL / "anime-reviews-current.html").read_bytes()
    for number in range(7):  # psycopg prepares a statement on its fifth run
        url = f"https://myanimelist.net/anime/{number + 2}/x/reviews"
        copy = body.replace(b"reviews.php?id=", f"reviews.php?id=7{number}".encode())
        ingest_page(pg, FetchedPage(url, url, 200, (), copy, AT + timedelta(days=number)))
    with pg.connect() as conn:  # the pool's one connection, which stored the pages
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars()
        statements = list(prepared)
    for table in ("reviews", "review_observations", "author_names"):
        assert any(f"INSERT INTO {table} " in s and "unnest(" in s for s in statements), table
