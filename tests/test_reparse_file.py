"""``reviews reparse`` of a plain SQLite file (``store/reparse_run.reparse_file``): counted,
batched, read and parsed through ``sqlite3``, SQLAlchemy imported only when a page must be
written, and every table left exactly as the SQLAlchemy path leaves it."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ingest_history
from test_reparse_skip import dump_tables
from test_reparse_workers import _archive, reparse_probed, tables

from scraper.api import Archive
from scraper.schema.tables import raw_bodies, raw_pages
from scraper.store.engine import open_engine
from scraper.store.lite import sqlite_file
from scraper.store.reparse import reparse
from scraper.store.reparse_run import Writer, reparse_file


def _copy(path: Path, to: Path) -> str:
    """Copy the (closed) archive *path* to *to*; return its URL."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", f"{to}{suffix}")
    return f"sqlite:///{to}"


@pytest.mark.parametrize("everything", [True, False])
def test_a_file_reparse_writes_what_the_engine_reparse_writes(
    sqlite_url: str, tmp_path: Path, everything: bool
) -> None:
    """Two copies of an archive with an outdated version, a missing digest and a damaged
    body: one reparsed through sqlite3, one through SQLAlchemy, come out the same."""
    engine, ids = _archive(sqlite_url)
    engine.dispose()
    path = sqlite_file(sqlite_url)
    assert path is not None
    other = _copy(Path(path), tmp_path / "other.db")
    with Archive(path) as archive:
        lite = archive.reparse(everything=everything, workers=2)
    engine = open_engine(other)
    try:
        alchemy = reparse(engine, everything=everything, workers=2)
        expected = dump_tables(engine)
    finally:
        engine.dispose()
    assert lite == alchemy
    assert lite.pages + lite.skipped == len(ids)
    if everything:  # the page without a digest is written, the damaged one named
        assert lite.written >= 1
        assert [line.split(":")[0] for line in lite.failed] == [f"raw page {ids[-1]}"]
    else:  # the page of an older version only, which stores what it stored
        assert (lite.pages, lite.written, lite.failed) == (1, 0, ())
    assert tables(sqlite_url) == expected


def test_an_unchanged_file_is_reparsed_without_asking_for_a_writer(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        ingest_history(engine, 5)
        before = dump_tables(engine)
    finally:
        engine.dispose()
    path = sqlite_file(sqlite_url)
    assert path is not None

    def writer() -> Writer:
        raise AssertionError("nothing to write, yet a writer was asked for")

    report = reparse_file(path, writer, everything=True)
    assert report is not None and (report.pages, report.written, report.failed) == (5, 0, ())
    assert tables(sqlite_url) == before


def test_a_file_at_an_older_schema_is_left_to_the_migrating_path(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")

    def writer() -> Writer:
        raise AssertionError("a file that needs migrating is not written here")

    assert reparse_file(str(path), writer, everything=True) is None
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"notes"}  # untouched


@pytest.mark.slow  # starts the command and its process pool
def test_an_unchanged_reparse_with_jobs_imports_no_sqlalchemy_anywhere(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``reviews reparse --all --jobs 2`` of an archive whose pages are as stored (one
    body damaged): neither the writer nor its worker imports SQLAlchemy or Alembic,
    the worker ends normally, the damaged page is named and the tables do not change."""
    engine = open_engine(sqlite_url)
    try:
        ingest_history(engine, 80)  # more than two batches: the worker takes part
        with engine.begin() as connection:
            damaged = connection.execute(
                sa.select(raw_pages.c.id, raw_pages.c.body_sha256).order_by(raw_pages.c.id)
            ).all()[40]
            connection.execute(
                sa.update(raw_bodies)
                .where(raw_bodies.c.sha256 == damaged.body_sha256)
                .values(data=b"not zstd")
            )
        before = dump_tables(engine)
    finally:
        engine.dispose()
    done, workers, writer = reparse_probed(tmp_path, "--all", "--jobs", "2", "--db", sqlite_url)
    assert done.returncode == 3, done.stderr  # a page left as it was
    assert done.stdout.startswith("reparsed 80 pages: 0 changed"), done.stdout
    assert f"left as it was: raw page {damaged.id}: " in done.stderr, done.stderr
    assert workers[0]["read"] and writer["read"], (workers, writer)
    assert workers[0]["heavy"] == [] and writer["heavy"] == [], (workers, writer)
    assert tables(sqlite_url) == before
