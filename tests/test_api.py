"""``scraper.api.Archive``, the library's front door, on a real SQLite file and the real
PostgreSQL server (``db_url``): what it stores and reads, and that it owns its engine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import HISTORY

from scraper.api import Archive
from scraper.cli import explain
from scraper.errors import StoreError, UsageError

PAGES = sorted(HISTORY.glob("*.html"))


@pytest.mark.slow
def test_an_archive_imports_queries_exports_and_counts(db_url: str, tmp_path: Path) -> None:
    with Archive(db_url) as archive:
        assert archive.closed  # nothing opened before the first call
        imported = list(archive.import_files([HISTORY], fetched_at_from="name"))
        assert not archive.closed
        assert len(imported) == len(PAGES)
        assert all(item.report is not None for item in imported)
        records = list(archive.query())
        assert records and {record["site"] for record in records} == {"myanimelist"}
        picked = list(archive.query(Archive.select(limit=2, sort="-date")))
        assert [r["url"] for r in picked] == [
            r["url"] for r in sorted(records, key=lambda r: r["date"], reverse=True)[:2]
        ]
        stream = io.StringIO()
        assert archive.export(stream, format="jsonl") == len(records)
        assert [json.loads(line) for line in stream.getvalue().splitlines()] == records
        out = tmp_path / "out" / "reviews.csv"
        out.parent.mkdir()
        assert archive.export(out, format="csv") == len(records)
        assert [p.name for p in out.parent.iterdir()] == ["reviews.csv"]  # no .partial
        stats = archive.stats()
        assert stats["totals"]["reviews"] == len(records)
        where, state, counts = archive.info()
        assert where and state.up_to_date and counts["reviews"] == len(records)
        with archive.sql("SELECT count(*) FROM reviews") as result:
            assert list(result.rows) == [(len(records),)]
        assert archive.reparse(everything=True).pages == len(PAGES)
        assert archive.runs() == []  # imports are not runs
        history = list(archive.query(history=True))
    assert archive.closed
    # With no engine open, a SQLite archive is read through the stdlib driver (a
    # server's through the engine the archive opens and keeps): the same records,
    # history included.
    with Archive(db_url) as fresh:
        assert list(fresh.query(history=True)) == history
        assert fresh.closed == db_url.startswith("sqlite")


def test_close_disposes_the_engine_and_a_later_call_opens_it_again(sqlite_url: str) -> None:
    archive = Archive(sqlite_url)
    archive.upgrade()
    engine = archive._engine
    assert engine is not None
    archive.close()
    assert archive.closed
    # A disposed engine's pool holds no connection any more.
    assert engine.pool.checkedin() == 0
    assert archive.info()[1].up_to_date  # opened again on demand
    archive.close()
    archive.close()  # closing twice is harmless


def test_a_read_never_creates_the_database(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    with Archive(str(missing)) as archive, pytest.raises(StoreError, match="no database"):
        list(archive.query())
    assert not missing.exists()


def test_errors_name_parameters_and_the_cli_says_the_flags(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        Archive.select(min_score="eleven")
    assert refused.value.parameter == "min_score"
    assert refused.value.message.startswith("min_score: ")
    assert "--min-score: 'eleven'" in explain(refused.value)[1]
    archive = Archive(str(tmp_path / "a.db"))
    with pytest.raises(UsageError) as refused:
        archive.export(io.StringIO(), format="csv", history=True)
    assert (refused.value.parameter, refused.value.also) == ("history", ("format",))
    assert explain(refused.value)[1].startswith("error: --history needs --format jsonl")
    with pytest.raises(UsageError) as refused:
        list(archive.archive(["http://127.0.0.1:9/x"], delay=-1))
    assert refused.value.parameter == "delay"
    assert archive.closed  # refused before anything was opened


def test_crawl_without_seeds_and_nothing_to_resume_is_a_usage_error(sqlite_url: str) -> None:
    with Archive(sqlite_url) as archive:
        with pytest.raises(UsageError, match="no unfinished") as no:
            archive.crawl([], resume_last=True)
        assert no.value.parameter == "seeds"
        # Without resume_last no seeds is a mistake, never a guess at an older crawl.
        with pytest.raises(UsageError, match=r"give URLs to crawl$") as no:
            archive.crawl([])
        assert no.value.parameter == "seeds"


@pytest.mark.postgres
def test_reads_on_a_server_share_the_archives_one_engine(postgres_url: str) -> None:
    # A fresh pool (and connection) per read call would be one per `stats` or `query`.
    with Archive(postgres_url) as filled:
        list(filled.import_files([HISTORY], fetched_at_from="name"))
    reader = Archive(postgres_url)
    try:
        assert reader.closed
        counts = reader.stats()
        assert not reader.closed  # opened for the read and kept
        engine = reader._engine
        records = list(reader.query())
        assert reader._engine is engine
        assert counts["totals"]["reviews"] == len(records) > 0
    finally:
        reader.close()


def test_reads_of_a_sqlite_file_open_no_engine(sqlite_url: str) -> None:
    with Archive(sqlite_url) as filled:
        list(filled.import_files([HISTORY], fetched_at_from="name"))
    with Archive(sqlite_url) as reader:
        assert reader.stats()["totals"]["reviews"] == len(list(reader.query())) > 0
        assert reader.closed  # read through the stdlib driver, no SQLAlchemy engine
