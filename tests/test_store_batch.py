"""``reviews import`` on SQLite writes several pages per transaction, each in a savepoint.

Checked on real SQLite files against one transaction per page (what the store did
before, and still does on PostgreSQL): the same rows in every table, every review
found by full-text search, a refused page rolled back alone (the others stored), a
failing database stopping the import, and a page reported
only once it is committed.
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import CORPUS, HISTORY, HISTORY_URL, MAL, archive_rows, report_said

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.records import FetchedPage
from scraper.store.batch import PageJob, ingest_pages
from scraper.store.engine import open_engine
from scraper.store.files import import_paths
from scraper.store.fts import parse_search
from scraper.store.ingest import IngestReport, ingest_page

ONE_PER_TRANSACTION = StoreSettings(sqlite_batch_pages=1)
#: A word as both full-text tokenizers cut text.
_WORD = re.compile(r"[^\W_]+")
#: Small batches, so a few pages make several of them.
BATCHES_OF_THREE = StoreSettings(sqlite_batch_pages=3)


def _saved_pages(folder: Path) -> list[Path]:
    """Our MAL fixtures (review pages and pages that are not), the history captures and
    a few corpus pages, copied into *folder*."""
    folder.mkdir()
    sources = sorted(MAL.glob("*.html")) + sorted(HISTORY.glob("*.html"))
    sources += sorted((CORPUS / "mal").glob("*.html"))[:6] if CORPUS.is_dir() else []
    for source in sources:
        shutil.copy2(source, folder / source.name)
    return sorted(folder.iterdir())


def _import(url: str, files: list[Path], settings: StoreSettings) -> list[Any]:
    engine = open_engine(url)
    try:
        return list(import_paths(engine, files, settings=settings))
    finally:
        engine.dispose()


def _path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _twin(sqlite_url: str, tmp_path: Path, name: str) -> str:
    """A second fresh archive beside the test's own (a copy of the migrated file)."""
    url = f"sqlite:///{tmp_path / name}"
    shutil.copyfile(_path(sqlite_url), _path(url))
    return url


def test_batches_store_exactly_what_one_transaction_per_page_stores(
    sqlite_url: str, tmp_path: Path
) -> None:
    files = _saved_pages(tmp_path / "pages")
    single = _twin(sqlite_url, tmp_path, "single.db")
    alone = _import(single, files, ONE_PER_TRANSACTION)
    batched = _import(sqlite_url, files, BATCHES_OF_THREE)
    assert [(i.path, i.url, i.error is None) for i in batched] == [
        (i.path, i.url, i.error is None) for i in alone
    ]
    assert [report_said(i.report) for i in batched] == [report_said(i.report) for i in alone]
    assert sum(1 for i in batched if i.report and i.report.reviews_new) > 3
    assert archive_rows(_path(sqlite_url)) == archive_rows(_path(single))
    # A second run finds every page stored, in batches as alone.
    again = _import(sqlite_url, files, BATCHES_OF_THREE)
    assert all(i.report is not None and i.report.already_stored for i in again)
    assert archive_rows(_path(sqlite_url)) == archive_rows(_path(single))


def test_full_text_search_finds_every_review_after_a_batched_import(
    sqlite_url: str, tmp_path: Path
) -> None:
    _import(sqlite_url, _saved_pages(tmp_path / "pages"), BATCHES_OF_THREE)
    connection = sqlite3.connect(_path(sqlite_url))
    try:
        reviews = connection.execute("SELECT id, body FROM reviews WHERE body != ''").fetchall()
        assert len(reviews) > 20
        for review_id, body in reviews:
            # The review's first words as a phrase, as `reviews query --search` asks.
            words = " ".join(body.replace('"', " ").split()[:6])
            match = parse_search(f'"{words}"').sqlite_match()
            found = {
                row[0]
                for row in connection.execute(
                    "SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH ?", (match,)
                )
            }
            assert review_id in found, words
        connection.execute("INSERT INTO reviews_fts(reviews_fts) VALUES ('integrity-check')")
    finally:
        connection.close()


def _page(number: int, name: str = "anime-reviews-current.html") -> FetchedPage:
    """A review page under its own URL (its reviews are the same ones each time)."""
    url = f"https://myanimelist.net/anime/{number}/x/reviews"
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=number)
    return FetchedPage(url, url, 200, (), (MAL / name).read_bytes(), at)


def _refuse(path: str, pattern: str) -> None:
    """Make the database refuse any raw page whose URL matches *pattern*."""
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON raw_pages "
        f"WHEN new.final_url LIKE '{pattern}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    connection.commit()
    connection.close()


def _stored_urls(path: str) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("SELECT final_url FROM raw_pages ORDER BY id")]
    finally:
        connection.close()


@pytest.mark.parametrize("settings", [StoreSettings(), ONE_PER_TRANSACTION], ids=["batch", "alone"])
@pytest.mark.parametrize("refused", [1, 3])
def test_a_page_refused_for_its_values_is_stored_not_at_all_and_the_others_are(
    sqlite_url: str, tmp_path: Path, refused: int, settings: StoreSettings
) -> None:
    path = _path(sqlite_url)
    expected = _twin(sqlite_url, tmp_path, "expected.db")
    _refuse(path, f"%/anime/{refused}/%")
    pages = [_page(number) for number in range(1, 6)]
    engine = open_engine(sqlite_url)
    try:
        jobs = (PageJob(n, p) for n, p in enumerate(pages, 1))
        done = dict(ingest_pages(engine, jobs, source="file", settings=settings))
        failure = done.pop(refused)
        assert isinstance(failure, StoreError) and "refused" in str(failure)
        assert failure.url == pages[refused - 1].final_url
        assert sorted(done) == [n for n in range(1, 6) if n != refused]
        assert all(isinstance(r, IngestReport) and not r.already_stored for r in done.values())
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER refuse")
        # The same as the other pages stored alone, one transaction each.
        _store_alone(expected, [page for n, page in enumerate(pages, 1) if n != refused])
        assert archive_rows(path) == archive_rows(_path(expected))
        again = list(
            ingest_pages(engine, (PageJob(n, p) for n, p in enumerate(pages, 1)), source="file")
        )
    finally:
        engine.dispose()
    stored_before = [isinstance(r, IngestReport) and r.already_stored for _, r in again]
    assert stored_before == [number != refused for number in range(1, 6)]
    others = [page.final_url for n, page in enumerate(pages, 1) if n != refused]
    assert _stored_urls(path) == [*others, pages[refused - 1].final_url]


@pytest.mark.parametrize("settings", [StoreSettings(), ONE_PER_TRANSACTION], ids=["batch", "alone"])
def test_a_database_that_fails_for_its_own_state_stops_the_import_after_committing_the_rest(
    sqlite_url: str, tmp_path: Path, settings: StoreSettings
) -> None:
    # A full disk: the archive may grow by what two pages take, not more. Each page
    # carries 100 KB of its own that does not compress, so the third cannot fit.
    pages = [_page(number) for number in range(1, 6)]
    pages = [
        replace(
            page,
            body=page.body + b"<!-- %s -->" % random.Random(n).randbytes(50_000).hex().encode(),
        )
        for n, page in enumerate(pages)
    ]
    twin = _twin(sqlite_url, tmp_path, "twin.db")
    _store_alone(twin, pages[:2])
    allowed = _page_count(_path(twin)) + 4
    engine = open_engine(sqlite_url)
    engine.dispose()  # every connection from here on is opened with the cap
    sa.event.listen(
        engine,
        "connect",
        lambda connection, _: connection.execute(f"PRAGMA max_page_count = {allowed}"),
    )
    reported: list[int] = []
    try:
        with pytest.raises(StoreError, match="full") as raised:
            for key, report in ingest_pages(
                engine,
                (PageJob(n, p) for n, p in enumerate(pages, 1)),
                source="file",
                settings=settings,
            ):
                assert isinstance(report, IngestReport)
                reported.append(key)
    finally:
        engine.dispose()
    assert reported == [1, 2]  # committed, then the third page filled the disk
    assert raised.value.url == pages[2].final_url
    assert _stored_urls(_path(sqlite_url)) == [page.final_url for page in pages[:2]]


def _page_count(path: str) -> int:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(connection.execute("PRAGMA page_count").fetchone()[0])
    finally:
        connection.close()


def _store_alone(url: str, pages: list[FetchedPage]) -> None:
    engine = open_engine(url)
    try:
        jobs = [PageJob(n, page) for n, page in enumerate(pages)]
        stored = list(ingest_pages(engine, jobs, source="file", settings=ONE_PER_TRANSACTION))
        assert len(stored) == len(pages)
    finally:
        engine.dispose()


def test_a_page_is_reported_once_committed_and_an_interrupted_batch_stores_nothing(
    sqlite_url: str,
) -> None:
    path = _path(sqlite_url)
    pages = [_page(number) for number in range(1, 8)]

    def jobs() -> Iterator[PageJob[int]]:
        for number, page in enumerate(pages, 1):
            if number == 6:
                raise KeyboardInterrupt  # the import stopped while its batch was open
            yield PageJob(number, page)

    engine = open_engine(sqlite_url)
    try:
        with pytest.raises(KeyboardInterrupt):
            for key, _report in ingest_pages(
                engine, jobs(), source="file", settings=BATCHES_OF_THREE
            ):
                # Another connection sees the page: it is committed.
                assert pages[key - 1].final_url in _stored_urls(path)
        # Pages 4 and 5 were in the open batch: not reported, not stored.
        assert _stored_urls(path) == [page.final_url for page in pages[:3]]
        again = [
            report.already_stored
            for _, report in ingest_pages(
                engine,
                (PageJob(n, p) for n, p in enumerate(pages, 1)),
                source="file",
                settings=BATCHES_OF_THREE,
            )
            if report is not None
        ]
    finally:
        engine.dispose()
    assert again == [True, True, True, False, False, False, False]
    assert _stored_urls(path) == [page.final_url for page in pages]


def test_a_batch_commits_after_its_pages_or_its_time(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    commits: list[int] = []
    sa.event.listen(engine, "commit", lambda _connection: commits.append(1))
    jobs = [PageJob(n, _page(n)) for n in range(1, 8)]
    jobs.insert(2, PageJob(0))  # nothing to store: passed through in its place
    try:
        keys = [
            key for key, _ in ingest_pages(engine, jobs, source="file", settings=BATCHES_OF_THREE)
        ]
        assert keys == [1, 2, 0, 3, 4, 5, 6, 7]
        assert len(commits) == 3  # 3 + 3 + 1 pages
        commits.clear()
        every_page = StoreSettings(sqlite_batch_pages=3, batch_seconds=0.0)
        more = [PageJob(n, _page(n)) for n in range(10, 14)]
        assert len(list(ingest_pages(engine, more, source="file", settings=every_page))) == 4
        assert len(commits) == 4
    finally:
        engine.dispose()


def _search_results(path: str, words: list[str]) -> dict[str, list[int]]:
    connection = sqlite3.connect(path)
    try:
        return {
            word: [
                row[0]
                for row in connection.execute(
                    "SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH ? ORDER BY rowid",
                    (parse_search(word).sqlite_match(),),
                )
            ]
            for word in words
        }
    finally:
        connection.close()


def _schema(path: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        connection.close()


def test_a_batch_indexes_its_reviews_as_the_trigger_does_and_puts_the_trigger_back(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Captures of one page over the years in one batch: reviews stored, then edited by
    a later capture in the same batch. Every word finds the same reviews as in an archive
    indexed review by review, and the schema is what it was."""
    path = _path(sqlite_url)
    single = _twin(sqlite_url, tmp_path, "single.db")
    schema = _schema(path)
    history = sorted(HISTORY.glob("*.html"))
    at = datetime(2021, 1, 1, tzinfo=UTC)
    pages = [
        FetchedPage(HISTORY_URL, HISTORY_URL, 200, (), source.read_bytes(), at + timedelta(days=n))
        for n, source in enumerate(history + history[:1])
    ] + [_page(number) for number in range(1, 4)]
    _store_alone(single, pages)
    engine = open_engine(sqlite_url)
    try:
        jobs = [PageJob(n, page) for n, page in enumerate(pages)]
        assert len(list(ingest_pages(engine, jobs, source="file"))) == len(pages)
    finally:
        engine.dispose()
    assert _schema(path) == schema
    connection = sqlite3.connect(path)
    try:
        bodies = [row[0] for row in connection.execute("SELECT body FROM reviews")]
        connection.execute("INSERT INTO reviews_fts(reviews_fts) VALUES ('integrity-check')")
    finally:
        connection.close()
    # The older captures' words too: an edit must take them out of the index.
    old = [source.read_text("utf-8", "replace") for source in history]
    texts = [body for body in bodies if body] + old
    words = sorted({word for text in texts for word in _WORD.findall(text.lower())})
    assert len(words) > 200
    assert _search_results(path, words) == _search_results(_path(single), words)
    # The trigger is back: a page stored alone afterwards is indexed by it.
    engine = open_engine(sqlite_url)
    try:
        ingest_page(engine, _page(9, "manga-reviews-current.html"))
    finally:
        engine.dispose()
    _store_alone(single, [_page(9, "manga-reviews-current.html")])
    assert _search_results(path, words) == _search_results(_path(single), words)
