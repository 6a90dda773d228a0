"""PostgreSQL's plans for the lookups that store a page: each key found through an index,
also before the tables have statistics (``scraper.store.pglookup``).

An archive whose tables were never analyzed (autovacuum off, or a new archive
growing faster than autovacuum analyzes it) holds thousands of one site's reviews
and authors here; a real page is then stored, and every SELECT the store ran is
explained with its own parameters and run. None may read more than a page's worth
of rows of those tables: reading every review of the site for each page made the
cost of a page grow with the archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import MAL

from scraper.records import FetchedPage
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page

pytestmark = pytest.mark.postgres

AT = datetime(2026, 3, 1, tzinfo=UTC)
#: Rows of the site made beforehand in each table; a page holds about 20 reviews.
_ROWS = 3000
_BIG = {"reviews", "authors", "author_names"}
#: Rows of those tables a page's lookup may read: its keys, and a few more.
_PAGE_ROWS = 100

_FILL = [
    "INSERT INTO items (site, key, type, name, url, first_seen_at, last_seen_at) "
    "VALUES ('myanimelist', 'filler', 'anime', 'filler', 'https://myanimelist.net/anime/0', "
    ":at, :at)",
    "INSERT INTO authors (site, key, name, url, image_url, name_seen_at) SELECT 'myanimelist', "
    "NULL, 'filler' || n, NULL, NULL, :at FROM generate_series(1, :rows) AS n",
    "INSERT INTO author_names (author_id, name, first_seen_at, last_seen_at) "
    "SELECT id, name, :at, :at FROM authors",
    "INSERT INTO reviews (item_id, author_id, site, key, url, source, first_seen_at, "
    "last_seen_at, body) SELECT (SELECT min(id) FROM items), a.id, 'myanimelist', "
    "'filler' || a.id, 'https://myanimelist.net/reviews.php?id=0', 'current', :at, :at, "
    "'filler text' FROM authors AS a",
]


@pytest.fixture
def statements(postgres_url: str) -> Iterator[tuple[sa.Engine, dict[str, tuple[str, Any]]]]:
    """The engine and every SELECT the store ran for a first capture and a recapture of
    a real page, among thousands of unanalyzed rows: text -> (SQL, parameters)."""
    engine = open_engine(postgres_url)
    with engine.begin() as connection:
        for sql in _FILL:
            connection.execute(sa.text(sql), {"at": AT - timedelta(days=9), "rows": _ROWS})
    caught: dict[str, tuple[str, Any]] = {}

    def catch(_c: Any, _cursor: Any, sql: str, params: Any, _x: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "pg_advisory" not in sql:
            caught.setdefault(" ".join(sql.split()), (sql, params[0] if many else params))

    url = "https://myanimelist.net/anime/1/x/reviews"
    body = (MAL / "anime-reviews-current.html").read_bytes()
    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        for day in range(2):
            page = body.replace(b"</body>", f"<!-- {day} --></body>".encode())
            ingest_page(engine, FetchedPage(url, url, 200, (), page, AT + timedelta(days=day)))
        sa.event.remove(engine, "before_cursor_execute", catch)
        yield engine, caught
    finally:
        engine.dispose()


def _rows_read(plan: dict[str, Any]) -> dict[str, float]:
    """Rows each table's scans returned or filtered out, over all loops of the plan."""
    read: dict[str, float] = {}
    table = plan.get("Relation Name")
    if table is not None:
        rows = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        rows += plan.get("Rows Removed by Index Recheck", 0)
        read[table] = rows * plan.get("Actual Loops", 1)
    for child in plan.get("Plans", ()):
        for name, rows in _rows_read(child).items():
            read[name] = read.get(name, 0) + rows
    return read


def test_the_tables_have_no_statistics_and_hold_thousands_of_the_sites_rows(
    statements: tuple[sa.Engine, dict[str, tuple[str, Any]]],
) -> None:
    engine, _ = statements
    with engine.connect() as connection:
        counts = connection.execute(
            sa.text(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN "
                "('reviews', 'authors', 'author_names') "
                "AND relnamespace = current_schema()::regnamespace"
            )
        ).all()
        reviews = connection.execute(
            sa.text("SELECT count(*) FROM reviews WHERE site = 'myanimelist'")
        ).scalar_one()
    assert {name: tuples for name, tuples in counts} == dict.fromkeys(_BIG, -1)
    assert reviews >= _ROWS


def test_every_lookup_of_a_page_reads_a_pages_worth_of_rows(
    statements: tuple[sa.Engine, dict[str, tuple[str, Any]]],
) -> None:
    engine, caught = statements
    lookups = [sql for sql, _ in caught.values() if set(_tables_in(sql)) & _BIG]
    assert any("FROM reviews" in sql for sql in lookups)  # the known reviews
    assert any("FROM author_names" in sql for sql in lookups)  # authors by name
    with engine.connect() as connection:
        for text, (sql, params) in caught.items():
            explained = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params
            ).scalar_one()
            plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]
            read = _rows_read(plan["Plan"])
            too_many = {t: rows for t, rows in read.items() if t in _BIG and rows > _PAGE_ROWS}
            assert not too_many, f"{text[:200]} read {too_many}"
            connection.rollback()


def _tables_in(sql: str) -> list[str]:
    words = sql.replace(",", " ").split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word.upper() in {"FROM", "JOIN"}]
