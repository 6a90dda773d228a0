"""``reviews reparse --jobs N`` on a SQLite file: the workers read their batches through
the stdlib ``sqlite3`` module (``store/reparse_lite.py``), so a worker starts without
SQLAlchemy or Alembic, and reads every page exactly as the one-process path does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HISTORY, HISTORY_URL, ingest_history
from sqlalchemy.engine import Engine
from test_reparse_skip import dump_tables

from scraper.records import FetchedPage
from scraper.schema.tables import raw_bodies, raw_pages
from scraper.store import reparse_lite
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page
from scraper.store.lite import sqlite_file
from scraper.store.parsing import Reparsed, outcome_digest
from scraper.store.reparse import _read_pages


def _seen(done: Reparsed) -> tuple[Any, ...]:
    """What the writer takes from a page read again (an outcome by its digest)."""
    outcome = None if done.outcome is None else outcome_digest(done.outcome)
    return (done.page, outcome, done.digest, done.outdated, done.failure)


def _archive(url: str) -> tuple[Engine, list[int]]:
    """An archive whose pages differ in every way a reader must carry: recaptures
    compressed against earlier bodies, a charset header, an older parser version, no
    digest, and (the last page) a damaged body; return it and its page ids."""
    engine = open_engine(url)
    ingest_history(engine, 6)
    body = sorted(HISTORY.glob("*.html"))[0].read_bytes()
    headers = (("Content-Type", "text/html; charset=ISO-8859-1"), ("X-Note", "é"))
    for day, extra in ((1, b""), (2, b"<!-- damaged below -->")):
        moment = datetime(2027, 1, day, tzinfo=UTC)
        page = FetchedPage(HISTORY_URL, HISTORY_URL, 200, headers, body + extra, moment)
        ingest_page(engine, page)
    with engine.begin() as connection:
        ids = sorted(
            int(found) for found in connection.execute(sa.select(raw_pages.c.id)).scalars()
        )
        connection.execute(
            sa.update(raw_pages).where(raw_pages.c.id == ids[1]).values(parser_version="0.0.1")
        )
        connection.execute(
            sa.update(raw_pages).where(raw_pages.c.id == ids[2]).values(records_sha256=None)
        )
        sha = connection.execute(
            sa.select(raw_pages.c.body_sha256).where(raw_pages.c.id == ids[-1])
        ).scalar_one()
        connection.execute(
            sa.update(raw_bodies).where(raw_bodies.c.sha256 == sha).values(data=b"not zstd")
        )
    return engine, ids


def test_a_batch_read_through_sqlite3_is_what_sqlalchemy_reads(sqlite_url: str) -> None:
    engine, ids = _archive(sqlite_url)
    path = sqlite_file(sqlite_url)
    assert path is not None
    try:
        # The whole archive, and a batch whose bodies' bases lie outside it.
        for batch in (ids, ids[-3:]):
            lite = reparse_lite.read_batch((path, batch))
            alchemy = _read_pages(engine, batch)
            assert [_seen(done) for done in lite] == [_seen(done) for done in alchemy]
        done = {found.page.id: found for found in reparse_lite.read_batch((path, ids))}
        assert "raw body" in (done[ids[-1]].failure or "")  # its data names no base
        assert [page for page, found in done.items() if found.failure] == [ids[-1]]
        assert done[ids[1]].outdated and not done[ids[0]].outdated
        assert done[ids[2]].outcome is not None and done[ids[0]].outcome is None
        assert done[ids[-2]].page.charset == "ISO-8859-1"
        assert done[ids[0]].page.fetched_at.tzinfo is not None
    finally:
        reparse_lite.close_connections()
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "count", "index"),
    [
        (reparse_lite.PAGE_ROWS_SQL, 3, "USING INTEGER PRIMARY KEY (rowid=?)"),
        (reparse_lite.BODY_ROWS_SQL, 3, "USING INDEX sqlite_autoindex_raw_bodies_1 (sha256=?)"),
        (reparse_lite.BODY_ROW_SQL, 0, "USING INDEX sqlite_autoindex_raw_bodies_1 (sha256=?)"),
    ],
    ids=["pages", "bodies", "a body"],
)
def test_a_workers_statements_read_by_key(
    sqlite_url: str, statement: str, count: int, index: str
) -> None:
    """The worker's own SQL (not seen by the plan test of the SQLAlchemy statements)
    looks pages and bodies up by their keys, never scanning a table."""
    import sqlite3
    from contextlib import closing

    path = sqlite_file(sqlite_url)
    assert path is not None
    sql = statement.format(marks=", ".join("?" * count)) if count else statement
    with closing(sqlite3.connect(path)) as connection:
        blanks = (None,) * sql.count("?")
        steps = [str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", blanks)]
    assert any(index in step for step in steps), steps
    assert not any(step.startswith("SCAN") for step in steps), steps


def test_a_batch_of_a_missing_file_is_a_store_error(tmp_path: Path) -> None:
    from scraper.errors import StoreError

    with pytest.raises(StoreError, match="no database there"):
        reparse_lite.read_batch((str(tmp_path / "gone.db"), [1]))
    assert not (tmp_path / "gone.db").exists()  # never created by reading it


_PROBE = """
import atexit, json, os, sys
import multiprocessing.util

_noted = []

def _note():
    if _noted:
        return
    _noted.append(True)
    heavy = sorted({name.split(".")[0] for name in sys.modules} & {"sqlalchemy", "alembic"})
    read = "scraper.store.reparse_lite" in sys.modules
    processes = sys.modules.get("multiprocessing")
    # A worker is told its parent (and given the parent's sys.argv).
    worker = processes is not None and processes.parent_process() is not None
    note = {"argv": sys.argv, "heavy": heavy, "read": read, "worker": worker}
    with open(os.environ["REVIEWS_TEST_PROBE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(note) + "\\n")

atexit.register(_note)

# A worker forked from the fork server ends with os._exit, past atexit: it notes as
# multiprocessing ends it.
class _Forked:
    pass

_forked = _Forked()
multiprocessing.util.register_after_fork(
    _forked, lambda _: multiprocessing.util.Finalize(None, _note, exitpriority=0)
)
"""


Note = dict[str, Any]


def reparse_probed(
    tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], list[Note], Note]:
    """Run ``reviews reparse *options*`` with every process it starts noting, as it
    exits, what it imported (``_PROBE``); return the run, its workers' notes and the
    writer's (asserting there is one worker and one writer)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(_PROBE, encoding="utf-8")
    notes = tmp_path / "notes.jsonl"
    python_path = os.pathsep.join(filter(None, [str(probe), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "REVIEWS_TEST_PROBE": str(notes)}
    command = Path(sys.executable).with_name("reviews")
    done = subprocess.run(
        [str(command), "reparse", *options],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=240,
    )
    seen = [json.loads(line) for line in notes.read_text(encoding="utf-8").splitlines()]
    workers = [note for note in seen if note["worker"]]
    writer = [note for note in seen if not note["worker"] and "reparse" in note["argv"]]
    assert len(workers) == 1 and len(writer) == 1, (done.stderr, seen)
    return done, workers, writer[0]


@pytest.mark.slow  # starts the command and its process pool
def test_a_reparse_worker_imports_neither_sqlalchemy_nor_alembic(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Every process ``reviews reparse --jobs 2`` starts notes, as it exits, which of
    them it imported: the worker none, the writer SQLAlchemy (or the probe is broken).
    The archive comes out as one process leaves it."""
    engine = open_engine(sqlite_url)
    try:
        ingest_history(engine, 80)  # more than two batches: the worker takes part
        before = dump_tables(engine)
        with engine.begin() as connection:
            connection.execute(sa.update(raw_pages).values(parser_version="0.0.1"))
            connection.execute(
                sa.update(raw_pages).where(raw_pages.c.id % 7 == 0).values(records_sha256=None)
            )
    finally:
        engine.dispose()
    done, workers, writer = reparse_probed(tmp_path, "--jobs", "2", "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reparsed 80 pages: 0 changed"), done.stdout
    assert "sqlalchemy" in writer["heavy"], writer  # the probe sees what is imported
    assert workers[0]["read"] and workers[0]["heavy"] == [], workers
    assert tables(sqlite_url) == before


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the archive at *url* (``dump_tables``)."""
    engine = open_engine(url)
    try:
        return dump_tables(engine)
    finally:
        engine.dispose()
