"""``reviews import --jobs N``: N processes parse and write (PostgreSQL: at once; SQLite:
a batch each, committed in the batches' order).

What they store is what one process stores (nothing lost or doubled, newest values
kept whatever order the captures land in), this process writes nothing itself, and
every process started is reaped.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HISTORY, MAL
from sqlalchemy import event
from test_import_workers import _children
from test_migration_0003 import postgres_url_2  # noqa: F401  (a fixture)

from scraper.cli import ExitCode, main
from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.store import files
from scraper.store.engine import open_engine
from scraper.store.files import import_paths

pytestmark = pytest.mark.slow  # starts process pools


def _folder(tmp_path: Path) -> Path:
    """Captures of the history page and of fixture pages on several days, so that
    writers at once store recaptures, renames and the same reviews out of order."""
    folder = tmp_path / "pages"
    folder.mkdir()
    sources = [
        *sorted(HISTORY.glob("*.html")),
        MAL / "anime-reviews-current.html",
        MAL / "manga-reviews-legacy-last-page.html",
        MAL / "user-reviews-current.html",
    ]
    for day in range(1, 5):
        for number, source in enumerate(sources):
            shutil.copyfile(source, folder / f"{number}-{source.stem}-2026-01-{day:02d}.html")
    return folder


#: Every table, with ids replaced by what they stand for (ids depend on write order,
#: and so do the bases raw bodies are compressed against: their sizes are compared).
_DUMPS = {
    "raw_bodies": "SELECT sha256, size FROM raw_bodies",
    "raw_pages": "SELECT final_url, fetched_at, body_sha256, source, page_kind, review_count, "
    "parse_error, parser_version, records_sha256, next_url FROM raw_pages",
    "items": "SELECT site, key, type, name, url, first_seen_at, last_seen_at FROM items",
    "authors": "SELECT site, key, name, url, image_url, name_seen_at FROM authors",
    "author_names": "SELECT a.site, a.name, n.name, n.first_seen_at, n.last_seen_at "
    "FROM author_names n JOIN authors a ON a.id = n.author_id",
    "reviews": "SELECT r.site, r.key, r.url, i.key, a.name, r.item_type, r.date_text, r.date, "
    "r.title, r.rating_value, r.rating_best, r.rating_worst, r.body, r.body_sha256, "
    "r.reactions::text, r.source, r.extra::text, r.first_seen_at, r.last_seen_at, "
    "p.final_url, p.fetched_at, r.body_fts::text FROM reviews r JOIN items i ON i.id = r.item_id "
    "JOIN authors a ON a.id = r.author_id LEFT JOIN raw_pages p ON p.id = r.last_raw_page_id",
    "review_tags": "SELECT r.key, t.name, rt.position FROM review_tags rt "
    "JOIN reviews r ON r.id = rt.review_id JOIN tags t ON t.id = rt.tag_id",
    "review_observations": "SELECT r.key, p.final_url, p.fetched_at, o.observed_at, "
    "o.author_name, o.rating_value, o.reactions::text, o.tags::text, o.body_sha256, "
    "o.extra::text FROM review_observations o JOIN reviews r ON r.id = o.review_id "
    "JOIN raw_pages p ON p.id = o.raw_page_id",
}


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = open_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            found = {}
            for table, query in _DUMPS.items():
                if sqlite:  # SQLite's JSON is text already; its index is reviews_fts
                    query = query.replace("::text", "").replace(", r.body_fts", "")
                found[table] = sorted(map(tuple, conn.execute(sa.text(query))), key=repr)
            if sqlite:
                conn.exec_driver_sql(_SQLITE_VOCABULARY)
                found["reviews_fts"] = sorted(
                    map(tuple, conn.execute(sa.text(_SQLITE_TERMS))), key=repr
                )
            return found
    finally:
        engine.dispose()


#: What SQLite's full-text index holds: each review's terms and their places, by the
#: review's key (read through a vocabulary table of this connection's own).
_SQLITE_VOCABULARY = (
    "CREATE VIRTUAL TABLE temp.fts_terms USING fts5vocab(main, reviews_fts, instance)"
)
_SQLITE_TERMS = (
    "SELECT r.key, v.term, v.col, v.offset FROM temp.fts_terms v JOIN reviews r ON r.id = v.doc"
)


def test_writers_at_once_store_what_one_process_stores(
    postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other_url = str(request.getfixturevalue("postgres_url_2"))
    folder = _folder(tmp_path)
    files = sorted(folder.iterdir())
    common = ["--fetched-at-from", "name"]
    assert main(["import", str(folder), "--db", postgres_url, *common]) == ExitCode.OK
    engine = open_engine(other_url)
    executed: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*args: Any) -> None:
        executed.append(args[2])

    try:
        imported = list(import_paths(engine, files, time_from="name", workers=2))
    finally:
        engine.dispose()
    assert [item.path for item in imported] == files  # in order, one each
    assert sum(item.report is not None for item in imported) == len(files)
    assert executed == []  # the workers wrote every page, not this process
    one, several = _dump(postgres_url), _dump(other_url)
    assert len(one["reviews"]) == 10 and len(one["raw_pages"]) == len(files)
    assert several == one


@pytest.mark.parametrize("batch", [3, 8], ids=["batches-of-3", "batches-of-8"])
def test_sqlite_writers_in_turn_store_what_one_process_stores(
    tmp_path: Path, migrated_sqlite: Path, batch: int
) -> None:
    folder = _folder(tmp_path)
    files = sorted(folder.iterdir())
    one_url, several_url = (_copy_of(migrated_sqlite, tmp_path / name) for name in ("1", "2"))
    settings = StoreSettings(sqlite_batch_pages=batch)
    engine = open_engine(one_url)
    try:
        alone = list(import_paths(engine, files, time_from="name", settings=settings))
    finally:
        engine.dispose()
    engine = open_engine(several_url)
    executed: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*args: Any) -> None:
        executed.append(args[2])

    try:
        imported = list(import_paths(engine, files, time_from="name", workers=2, settings=settings))
    finally:
        engine.dispose()
    assert [item.path for item in imported] == files  # in order, one each
    # Batches committed in their order, as one process commits them: the same counts.
    assert [_said(item) for item in imported] == [_said(item) for item in alone]
    assert executed == []  # the workers wrote every page, not this process
    one, several = _dump(one_url), _dump(several_url)
    assert len(one["reviews"]) == 10 and len(one["raw_pages"]) == len(files)
    assert one["reviews_fts"]  # the index was compared, not two empty ones
    assert several == one


def _copy_of(migrated: Path, path: Path) -> str:
    shutil.copyfile(migrated, path)
    return f"sqlite:///{path}"


def _said(item: Any) -> tuple[Any, ...]:
    """What an Imported says but the raw page's id."""
    report = item.report
    counts = None
    if report is not None:
        counts = (
            report.page_kind,
            report.reviews_new,
            report.reviews_updated,
            report.reviews_unchanged,
            report.already_stored,
        )
    return item.path, item.url, item.fetched_at, counts, item.error


def test_sqlite_writers_stopped_early_end_and_keep_what_they_reported(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """The reader stops after the first file: the batches not started are dropped, the
    workers end (no hang) and are reaped, and what was reported is stored. (A turn that
    will never come is told apart below, on ``_turn`` itself.)"""
    files = sorted(_folder(tmp_path).iterdir())
    url = _copy_of(migrated_sqlite, tmp_path / "archive.db")
    before = _children()
    engine = open_engine(url)
    signal.alarm(120)  # a hang fails the test instead of the run
    try:
        imported = import_paths(
            engine, files, time_from="name", workers=2, settings=StoreSettings(sqlite_batch_pages=2)
        )
        first = next(imported)
        imported.close()  # type: ignore[attr-defined]  # a generator
    finally:
        signal.alarm(0)
        engine.dispose()
    assert _children() - before == set()
    assert first.report is not None
    with sqlite3.connect(tmp_path / "archive.db") as connection:
        ids = {row[0] for row in connection.execute("SELECT id FROM raw_pages")}
    assert first.report.raw_page_id in ids
    assert len(ids) < len(files)  # stopped: the later batches were not all written


def test_import_with_writers_reaps_every_process_it_started(
    postgres_url: str, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    before = _children()
    assert main(["import", str(folder), "--db", postgres_url, "--jobs", "2"]) == ExitCode.OK
    assert _children() - before == set()


class _Shared:
    """A ``multiprocessing.Value`` stand-in for threads."""

    def __init__(self) -> None:
        self.value = 0


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> Any:
    shared = files._Turns(threading.Condition(), _Shared(), _Shared())
    monkeypatch.setattr(files, "_turns", shared)
    return shared


def _in_turn(number: int, done: list[int], fail: bool = False) -> None:
    with files._turn(number):
        if fail:
            raise OSError("disk full")
        done.append(number)


def test_batches_are_written_in_their_order_whatever_order_they_come_in(turns: Any) -> None:
    done: list[int] = []
    late = [threading.Thread(target=_in_turn, args=(n, done)) for n in (2, 1)]
    for thread in late:
        thread.start()
    time.sleep(0.05)
    assert done == []  # batches 1 and 2 wait for batch 0
    _in_turn(0, done)
    for thread in late:
        thread.join(timeout=10)
    assert done == [0, 1, 2]


def test_a_batch_that_fails_in_its_turn_stops_the_later_ones(turns: Any) -> None:
    done: list[int] = []
    errors: list[BaseException] = []

    def later() -> None:
        try:
            _in_turn(1, done)
        except StoreError as error:
            errors.append(error)

    waiting = threading.Thread(target=later)
    waiting.start()
    with pytest.raises(OSError):
        _in_turn(0, done, fail=True)
    waiting.join(timeout=10)
    assert done == [] and not waiting.is_alive()
    assert "stopped before this batch's turn" in str(errors[0])


def test_a_batch_waiting_for_a_turn_that_will_not_come_gives_up_when_told(turns: Any) -> None:
    errors: list[BaseException] = []

    def waiting_for_5() -> None:
        try:
            _in_turn(5, [])
        except StoreError as error:
            errors.append(error)

    thread = threading.Thread(target=waiting_for_5)
    thread.start()
    files._stop_turns(turns)
    thread.join(timeout=10)
    assert not thread.is_alive() and len(errors) == 1
