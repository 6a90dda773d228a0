"""A reparse writes only the pages whose records changed, and leaves the same archive.

Every page's parse stores a digest of its records (``raw_pages.records_sha256``);
a reparse that reads the same records again writes nothing for the page. Checked on
real SQLite files and the real PostgreSQL server, against a dump of every table:
skipping a write must leave exactly what writing would.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ingest_history
from sqlalchemy.engine import Engine

from scraper.schema.tables import metadata, raw_pages, reviews
from scraper.store.ingest import PARSER_VERSION
from scraper.store.reparse import reparse


def dump_tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the archive, in primary-key order."""
    found = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(sa.select(table).order_by(*order))
            found[table.name] = [tuple(row) for row in rows]
    return found


def _set_pages(engine: Engine, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(raw_pages).values(**values))


def test_an_unchanged_archive_is_read_again_and_not_written(engine: Engine) -> None:
    ingest_history(engine, 3)
    before = dump_tables(engine)
    report = reparse(engine, everything=True)
    assert (report.pages, report.written, report.pages_changed) == (3, 0, 0)
    assert dump_tables(engine) == before


def test_a_new_parser_version_reads_every_page_and_writes_only_its_version(
    engine: Engine,
) -> None:
    ingest_history(engine, 3)
    before = dump_tables(engine)
    _set_pages(engine, parser_version="0.0.1")
    report = reparse(engine)
    assert (report.pages, report.skipped, report.written, report.pages_changed) == (3, 0, 0, 0)
    assert dump_tables(engine) == before  # the current version again, nothing else touched
    assert reparse(engine).pages == 0  # now read by this version: skipped


def test_a_page_whose_records_changed_is_written(engine: Engine) -> None:
    """An archive an older parser wrote (another title, another digest) is put right."""
    ingest_history(engine, 3)
    before = dump_tables(engine)
    with engine.begin() as connection:
        newest = connection.execute(sa.select(sa.func.max(raw_pages.c.id))).scalar_one()
        connection.execute(
            sa.update(raw_pages)
            .where(raw_pages.c.id == newest)
            .values(parser_version="0.0.1", records_sha256="0" * 64)
        )
        connection.execute(
            sa.update(reviews).where(reviews.c.last_raw_page_id == newest).values(title="old")
        )
    report = reparse(engine)
    assert (report.pages, report.written, report.pages_changed) == (1, 1, 1)
    assert report.reviews_changed > 0
    assert dump_tables(engine) == before


def test_pages_stored_before_the_digest_are_written_once_and_get_it(engine: Engine) -> None:
    """An archive from before revision 0004 (no digests) reparses as it always did."""
    ingest_history(engine, 3)
    before = dump_tables(engine)
    _set_pages(engine, records_sha256=None)
    report = reparse(engine, everything=True)
    assert (report.pages, report.written, report.pages_changed) == (3, 3, 0)
    # Written in full, it is the same archive, digests included: ingest and reparse
    # digest the same records alike.
    assert dump_tables(engine) == before
    assert reparse(engine, everything=True).written == 0


def test_all_rereads_pages_this_version_read(engine: Engine) -> None:
    ingest_history(engine, 2)
    assert reparse(engine).pages == 0  # read by this version at ingest
    with engine.connect() as connection:
        versions = connection.execute(sa.select(raw_pages.c.parser_version)).scalars().all()
    assert versions == [PARSER_VERSION] * 2
    assert reparse(engine, everything=True).pages == 2


@pytest.mark.slow  # starts a process pool
def test_workers_read_and_skip_as_one_process_does(engine: Engine) -> None:
    """More pages than one batch: the workers read them through their own connections."""
    ingest_history(engine, 80)
    before = dump_tables(engine)
    _set_pages(engine, parser_version="0.0.1")
    with engine.begin() as connection:
        connection.execute(
            sa.update(raw_pages).where(raw_pages.c.id % 7 == 0).values(records_sha256=None)
        )
    report = reparse(engine, workers=2)
    assert (report.pages, report.written, report.pages_changed) == (80, 11, 0)
    assert dump_tables(engine) == before
    again = reparse(engine, everything=True, workers=2)
    assert (again.pages, again.written) == (80, 0)
    assert dump_tables(engine) == before
    # Every page to write: this process writes and leaves the parsing to the worker.
    _set_pages(engine, records_sha256=None)
    written = reparse(engine, everything=True, workers=2)
    assert (written.pages, written.written, written.pages_changed) == (80, 80, 0)
    assert dump_tables(engine) == before


def test_a_page_that_cannot_be_reparsed_is_named_and_the_others_go_on(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged body (the newest page's) and rows the database refuses (another
    page's) fail those pages alone; the run reparses the rest and exits with 3."""
    from scraper.cli import ExitCode, main
    from scraper.schema.tables import raw_bodies
    from scraper.store.engine import open_engine

    engine = open_engine(sqlite_url)
    try:
        ingest_history(engine, 3)
        _set_pages(engine, records_sha256=None)  # every page to be written again
        with engine.begin() as connection:
            ids = connection.execute(sa.select(raw_pages.c.id).order_by(raw_pages.c.id))
            first, refused, damaged = ids.scalars().all()
            sha = connection.execute(
                sa.select(raw_pages.c.body_sha256).where(raw_pages.c.id == damaged)
            ).scalar_one()
            connection.execute(
                sa.update(raw_bodies).where(raw_bodies.c.sha256 == sha).values(data=b"not zstd")
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON raw_pages "
                f"WHEN NEW.id = {refused} BEGIN SELECT RAISE(ABORT, 'refused here'); END"
            )
        report = reparse(engine, everything=True)
        assert (report.pages, report.written) == (3, 1)
        assert [line.split(":")[0] for line in report.failed] == [
            f"raw page {refused}",
            f"raw page {damaged}",
        ]
        assert "refused here" in report.failed[0]
        with engine.connect() as connection:
            rows = connection.execute(sa.select(raw_pages.c.id, raw_pages.c.records_sha256))
            digests = {int(page_id): digest for page_id, digest in rows}
        assert digests[first] is not None  # written
        assert digests[refused] is None and digests[damaged] is None  # left as they were
    finally:
        engine.dispose()
    assert main(["reparse", "--all", "--db", sqlite_url]) == ExitCode.PAGE_ERRORS
    err = capsys.readouterr().err
    assert f"left as it was: raw page {refused}: refused" in err
    assert f"left as it was: raw page {damaged}:" in err
