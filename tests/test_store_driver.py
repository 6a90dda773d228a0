"""``reviews import`` on SQLite runs the store's statements through the ``sqlite3`` driver
(``scraper.store.driverexec``): it must store exactly what the engine's path stores.

Every page we have (our MAL and schema.org fixtures, the history captures, and the
shared corpus when it is there) is imported into one archive through the batches,
whose writes go through the driver, and into another one page per transaction
through ``ingest_page`` and SQLAlchemy's own execution (the crawl's path, and what
the store did before). Every row of every table must be the same, and so must the
answer to a full-text search for every word and every review's opening phrase.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import (
    CORPUS,
    FIXTURES,
    HISTORY,
    HISTORY_URL,
    MAL,
    SCHEMAORG_PAGES,
    archive_rows,
    report_said,
)

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.records import FetchedPage
from scraper.schema.tables import raw_pages, reviews, tags
from scraper.store import driverexec
from scraper.store.batch import PageJob, ingest_pages
from scraper.store.driverexec import driver_connection, inserted_ids
from scraper.store.engine import open_engine, write_transaction
from scraper.store.files import import_paths
from scraper.store.fts import parse_search

ONE_PER_TRANSACTION = StoreSettings(sqlite_batch_pages=1)
BATCHES_OF_FIVE = StoreSettings(sqlite_batch_pages=5)
_WORD = re.compile(r"[^\W_]+")


def _every_page(folder: Path) -> list[Path]:
    """Every saved page we have, copied into *folder* (names kept apart by their folder)."""
    folder.mkdir()
    sources = [
        *sorted(MAL.glob("*.html")),
        *sorted(HISTORY.glob("*.html")),
        *sorted(SCHEMAORG_PAGES.glob("*.html")),
    ]
    if CORPUS.is_dir():
        sources += sorted(CORPUS.glob("*/*.html"))
    for source in sources:
        shutil.copy2(source, folder / f"{source.parent.name}-{source.name}")
    assert sources and all(FIXTURES in s.parents or CORPUS in s.parents for s in sources)
    return sorted(folder.iterdir())


def _searches(path: str) -> dict[str, list[int]]:
    """The reviews full-text search finds for each word of every body, and for each
    review's first words as a phrase; FTS5's own integrity check passes."""
    connection = sqlite3.connect(path)
    try:
        bodies = [row[0] for row in connection.execute("SELECT body FROM reviews")]
        queries = {word.lower() for body in bodies for word in _WORD.findall(body or "")}
        queries |= {'"' + " ".join(_WORD.findall(b or "")[:5]) + '"' for b in bodies if b}
        found = {}
        for query in sorted(queries - {'""'}):
            match = parse_search(query).sqlite_match()
            found[query] = [
                row[0]
                for row in connection.execute(
                    "SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH ? ORDER BY rowid",
                    (match,),
                )
            ]
        connection.execute("INSERT INTO reviews_fts(reviews_fts) VALUES ('integrity-check')")
        return found
    finally:
        connection.close()


def _import(db: str, files: list[Path], settings: StoreSettings, **options: Any) -> list[Any]:
    engine = open_engine(db)
    try:
        return [
            (i.path.name, i.url, report_said(i.report), repr(i.error))
            for i in import_paths(engine, files, settings=settings, **options)
        ]
    finally:
        engine.dispose()


def _twin(sqlite_url: str, tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    shutil.copyfile(sqlite_url.removeprefix("sqlite:///"), tmp_path / name)
    return url


def _path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _same_archives(driver: str, engine_path: str) -> None:
    assert archive_rows(_path(driver)) == archive_rows(_path(engine_path))
    searched = _searches(_path(driver))
    assert sum(1 for ids in searched.values() if ids) > 100
    assert searched == _searches(_path(engine_path))


def test_the_driver_stores_every_row_the_engine_stores(sqlite_url: str, tmp_path: Path) -> None:
    files = _every_page(tmp_path / "pages")
    single = _twin(sqlite_url, tmp_path, "single.db")
    # First captures of every page, then the same again (every capture stored already),
    # then the history's captures again under other times, newest first: recaptures,
    # renamed authors, changed tags, and older captures arriving late.
    history = [f for f in files if f.name.startswith("history-")]
    runs: list[tuple[list[Path], dict[str, Any]]] = [
        (files, {}),
        (files, {}),
        (history[::-1], {"fetched_at": datetime(2025, 1, 1, tzinfo=UTC)}),
        (history, {"fetched_at": datetime(2027, 1, 1, tzinfo=UTC), "url": HISTORY_URL}),
        (history[::-1], {"fetched_at": datetime(2024, 1, 1, tzinfo=UTC), "url": HISTORY_URL}),
    ]
    updated = 0
    for run, options in runs:
        alone = _import(single, run, ONE_PER_TRANSACTION, **options)
        batched = _import(sqlite_url, run, BATCHES_OF_FIVE, **options)
        assert batched == alone
        updated += sum(said[3] for _, _, said, _ in batched if said)
    assert updated > 0
    _same_archives(sqlite_url, single)


def _captures(count: int) -> list[FetchedPage]:
    """*count* captures of the history pages, a day apart, newest first (each older
    capture moves its reviews' first sighting back)."""
    sources = sorted(HISTORY.glob("*.html"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        FetchedPage(
            HISTORY_URL,
            HISTORY_URL,
            200,
            (),
            sources[n % len(sources)].read_bytes(),
            start - timedelta(days=n),
        )
        for n in range(count)
    ]


def test_captures_out_of_order_in_one_batch_store_what_the_engine_stores(
    sqlite_url: str, tmp_path: Path
) -> None:
    single = _twin(sqlite_url, tmp_path, "single.db")
    pages = _captures(7)
    _store_pages(single, pages, ONE_PER_TRANSACTION)
    _store_pages(sqlite_url, pages, StoreSettings())
    _same_archives(sqlite_url, single)


def _store_pages(url: str, pages: list[FetchedPage], settings: StoreSettings) -> int:
    """Store *pages* in the archive at *url*; return how many statements its writer
    ran through the driver (compiled for it)."""
    engine = open_engine(url)
    try:
        jobs = (PageJob(n, page) for n, page in enumerate(pages))
        done = list(ingest_pages(engine, jobs, source="file", settings=settings))
        assert len(done) == len(pages)
        compiled = driverexec.statement_cache(engine.dialect).prepared
        return sum(1 for prepared in compiled.values() if prepared is not None)
    finally:
        engine.dispose()


def test_a_refusal_through_the_driver_is_the_engines_error(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        with write_transaction(engine) as connection:
            writer = driver_connection(connection)
            insert = sa.insert(tags)
            for _ in range(2):  # the second time through the driver
                writer.execute(insert, [{"name": "one"}, {"name": "two"}])
                with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"):
                    writer.execute(insert, {"name": "one"})
                writer.execute(sa.delete(tags))
    finally:
        engine.dispose()


def test_rows_inserted_are_given_their_own_ids_through_the_driver_and_without_it(
    sqlite_url: str,
) -> None:
    """``inserted_ids`` (new reviews, authors, raw pages) returns each row's id in the
    rows' order: through SQLAlchemy on a plain connection (RETURNING, or the cursor's key
    for one row), and on a batch's
    writer through SQLAlchemy the first time a statement is seen, then through the
    driver's rowids; a row that meets a stored one is refused, never written over."""
    engine = open_engine(sqlite_url)
    insert = sa.insert(tags)
    cache = driverexec.statement_cache(engine.dialect)
    try:
        with write_transaction(engine) as connection:
            plain = inserted_ids(connection, insert, [{"name": "f"}, {"name": "e"}])
            plain += inserted_ids(connection, insert, [{"name": "h"}])
            writer = driver_connection(connection)
            first = inserted_ids(writer, insert, [{"name": "b"}, {"name": "a"}])
            assert id(insert) not in cache.held  # seen once: SQLAlchemy ran it
            again = inserted_ids(writer, insert, [{"name": "d"}, {"name": "c"}])
            assert cache.held.get(id(insert)) is insert  # the driver ran it
            stored = dict(connection.execute(sa.select(tags.c.name, tags.c.id)).all())
            assert plain == [stored["f"], stored["e"], stored["h"]]
            assert first == [stored["b"], stored["a"]] and again == [stored["d"], stored["c"]]
            assert len(set(plain + first + again)) == 7
            with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"):
                inserted_ids(writer, insert, [{"name": "g"}, {"name": "a"}])
            assert connection.execute(sa.select(sa.func.count()).select_from(tags)).scalar() == 8
    finally:
        engine.dispose()


def _stored(path: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT id, fetched_at FROM raw_pages").fetchall()
    finally:
        connection.close()


def test_rows_read_through_the_driver_are_the_engines(sqlite_url: str) -> None:
    """Times, JSON and IN lists of any length (none, one, many) come back as SQLAlchemy
    gives them."""
    engine = open_engine(sqlite_url)
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    page = {
        "requested_url": "https://example.com/a",
        "final_url": "https://example.com/a",
        "status": 200,
        "headers": [["Content-Type", "text/html"]],
        "fetched_at": at,
        "body_sha256": "0" * 64,
        "source": "file",
    }
    query = sa.select(raw_pages.c.id, raw_pages.c.headers, raw_pages.c.fetched_at).where(
        raw_pages.c.final_url.in_(sa.bindparam("urls", expanding=True))
    )
    try:
        with write_transaction(engine) as connection:
            connection.exec_driver_sql(
                "INSERT INTO raw_bodies (sha256, size, encoding, data) VALUES (?, 0, 'zstd', x'')",
                ("0" * 64,),
            )
            writer = driver_connection(connection)
            insert = sa.insert(raw_pages).returning(raw_pages.c.id)
            ids = [writer.execute(insert, page).scalar_one() for _ in range(3)]
            for urls in ([], ["https://example.com/a"], ["x", "https://example.com/a", "y"]):
                for _ in range(2):
                    driven = writer.execute(query, {"urls": urls}).all()
                    assert driven == connection.execute(query, {"urls": urls}).all()
                    assert len(driven) == (3 if "https://example.com/a" in urls else 0)
            row = writer.execute(query, {"urls": ["https://example.com/a"]}).first()
            assert (row.id, row.headers, row.fetched_at) == (ids[0], page["headers"], at)
            assert writer.execute(sa.select(reviews.c.id)).first() is None
    finally:
        engine.dispose()


def test_a_write_refused_through_the_driver_is_named_and_stores_nothing_of_its_page(
    sqlite_url: str,
) -> None:
    path = _path(sqlite_url)
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON reviews WHEN new.key = 'never' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    connection.commit()
    connection.close()
    pages = _captures(3)
    engine = open_engine(sqlite_url)
    try:
        done = list(ingest_pages(engine, (PageJob(n, p) for n, p in enumerate(pages)), source="f"))
        assert len(done) == 3
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER refuse")
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON reviews "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        later = [replace(p, fetched_at=p.fetched_at + timedelta(days=30)) for p in pages]
        done = list(ingest_pages(engine, (PageJob(n, p) for n, p in enumerate(later)), source="f"))
        # Each page updates a review: each is refused, named, and the next one runs.
        assert [key for key, _ in done] == [0, 1, 2]
        for _, failure in done:
            assert isinstance(failure, StoreError) and "refused" in str(failure)
            assert failure.url == HISTORY_URL
        assert len(_stored(path)) == 3
    finally:
        engine.dispose()


def test_batches_of_one_page_write_through_the_driver_from_the_second_page(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A slow machine closes each batch after one page (``batch_seconds``): the
    statements seen on the first page still run through the driver on the next ones."""
    single = _twin(sqlite_url, tmp_path, "single.db")
    pages = _captures(4)
    _store_pages(single, pages, ONE_PER_TRANSACTION)
    assert _store_pages(sqlite_url, pages, StoreSettings(batch_seconds=0.0)) > 10
    _same_archives(sqlite_url, single)


def test_a_sqlalchemy_without_the_parts_read_stores_the_same_through_itself(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """driverexec reads compiled statements below SQLAlchemy's public API: a release
    that moved those parts must leave the import right, only slower."""
    single = _twin(sqlite_url, tmp_path, "single.db")
    pages = _captures(4)
    _store_pages(single, pages, ONE_PER_TRANSACTION)

    def moved(*_: Any) -> Any:  # as a compiled statement without the parts it reads
        raise AttributeError("'SQLiteCompiler' object has no attribute '_bind_processors'")

    monkeypatch.setattr(driverexec, "_compile", moved)
    assert _store_pages(sqlite_url, pages, StoreSettings()) == 0  # nothing compiled here
    _same_archives(sqlite_url, single)


def test_another_database_is_written_through_its_own_connection(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    try:
        with write_transaction(engine) as connection:
            assert driver_connection(connection) is connection
    finally:
        engine.dispose()
