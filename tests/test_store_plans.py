"""SQLite's query plans for the statements that store a page: each row found by an index.

Every statement the store runs while importing pages (first captures, recaptures
and a page stored again) is caught as it runs and explained with its own
parameters. A full scan of an archive table costs more with every page stored:
the cost per page would grow with the archive (issue 13: flat at 50k pages).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HISTORY_URL, MAL, ingest_history

from scraper.records import FetchedPage
from scraper.store.engine import open_engine
from scraper.store.files import import_paths
from scraper.store.ingest import ingest_page

#: Scans that stay bounded whatever the archive's size, each with why.
_BOUNDED_SCANS = {
    # The newest raw pages, walked backwards in rowid order and cut by the LIMIT.
    ("ORDER BY raw_pages.id DESC LIMIT", "SCAN raw_pages"),
    # One row made by a subquery of the same statement (the URL's newest capture).
    ("UNION ALL", "SCAN anon_2"),
    # The schema's own table (a few dozen rows): the text of the full-text trigger.
    ("FROM sqlite_master", "SCAN sqlite_master"),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[str]]]:
    """Statement text -> its query plan's lines, for every statement the store ran."""
    folder = tmp_path_factory.mktemp("plans")
    engine = open_engine(f"sqlite:///{folder / 'reviews.db'}")
    caught: dict[str, tuple[str, Any]] = {}

    def catch(_c: Any, _cursor: Any, sql: str, params: Any, _x: Any, many: bool) -> None:
        caught.setdefault(" ".join(sql.split()), (sql, params[0] if many else params))

    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        ingest_history(engine, 6)  # first captures, then recaptures that edit reviews
        saved = folder / "pages"
        saved.mkdir()
        for source in sorted(MAL.glob("*.html")):
            (saved / source.name).write_bytes(source.read_bytes())
        files = sorted(saved.iterdir())
        list(import_paths(engine, files))
        list(import_paths(engine, files))  # stored already
    finally:
        sa.event.remove(engine, "before_cursor_execute", catch)
        engine.dispose()
    connection = sqlite3.connect(folder / "reviews.db")
    try:
        yield {
            text: [row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for text, (sql, params) in caught.items()
            if text.split()[0] in {"SELECT", "UPDATE", "DELETE", "WITH"}
            or text.startswith("INSERT INTO reviews_fts")
        }
    finally:
        connection.close()


def test_the_statements_that_store_a_page_read_rows_through_indexes(
    plans: dict[str, list[str]],
) -> None:
    assert len(plans) > 10
    scans = [
        (text[:100], line)
        for text, lines in plans.items()
        for line in lines
        if line.startswith("SCAN ")
        and not any(marker in text and line == scan for marker, scan in _BOUNDED_SCANS)
    ]
    assert scans == []


def _plans_of(plans: dict[str, list[str]], start: str) -> list[list[str]]:
    """The plans of the statements starting with *start* (one per count of IN values)."""
    found = [lines for text, lines in plans.items() if text.startswith(start)]
    assert found, start
    return found


def test_a_stored_capture_is_found_through_its_body_sha256(plans: dict[str, list[str]]) -> None:
    """Not through its capture time: an import giving every file one ``--fetched-at``
    would read every page stored at that time for each page."""
    found = _plans_of(plans, "SELECT raw_pages.id FROM raw_pages WHERE raw_pages.body_sha256")
    assert found == [["SEARCH raw_pages USING INDEX ix_raw_pages_body_sha256 (body_sha256=?)"]]


def test_a_batch_indexes_its_new_reviews_by_walking_the_new_row_ids(
    plans: dict[str, list[str]],
) -> None:
    found = _plans_of(plans, "INSERT INTO reviews_fts(rowid, body) SELECT id, body FROM reviews")
    assert found == [["SEARCH reviews USING INTEGER PRIMARY KEY (rowid>?)"]]


def test_known_reviews_are_read_by_their_site_and_key(plans: dict[str, list[str]]) -> None:
    for plan in _plans_of(plans, 'SELECT reviews.id, reviews.site, reviews."key"'):
        assert plan == [
            "SEARCH reviews USING INDEX sqlite_autoindex_reviews_1 (site=? AND key=?)",
            "SEARCH authors USING INTEGER PRIMARY KEY (rowid=?)",
        ]


def _capture_check_steps(url: str, pages: int) -> int:
    """Store *pages* pages captured at one time, then return how many virtual machine
    steps the store's check of one more page at that time takes."""
    engine = open_engine(url)
    body = (MAL / "anime-reviews-current.html").read_bytes()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    caught: list[tuple[str, Any]] = []

    def catch(_c: Any, _cursor: Any, sql: str, params: Any, _x: Any, _many: bool) -> None:
        if "FROM raw_pages WHERE raw_pages.body_sha256" in " ".join(sql.split()):
            caught.append((sql, params))

    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        for number in range(pages + 1):
            page_url = f"{HISTORY_URL}?copy={number}"
            page = FetchedPage(page_url, page_url, 200, (), body + b" " * number, at)
            ingest_page(engine, page)
    finally:
        engine.dispose()
    sql, params = caught[-1]
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    try:
        connection.set_progress_handler(tick, 1)
        assert connection.execute(sql, params).fetchall() != []
    finally:
        connection.close()
    return counted[0]


def test_a_capture_check_costs_the_same_among_many_pages_stored_at_its_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Growth: an import giving every file one ``--fetched-at`` checks each page at the
    same cost, however many pages it stored before."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    shutil.copyfile(sqlite_url.removeprefix("sqlite:///"), other.removeprefix("sqlite:///"))
    assert _capture_check_steps(sqlite_url, 40) == _capture_check_steps(other, 1)
