"""What keeps the store fast as the archive grows: the hot statements' SQLite query
plans use indexes, and a parallel reparse stores what one process does."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import HISTORY, ingest_history
from sqlalchemy.dialects import sqlite

from scraper.cli import ExitCode, main
from scraper.records import FetchedPage
from scraper.schema.tables import raw_pages
from scraper.store.authors import _BY_NAME
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page


def _plan(url: str, statement: str, params: dict[str, object]) -> str:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            return "\n".join(str(row[-1]) for row in rows)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "params", "index"),
    [
        # reparse: observations a page no longer shows
        (
            "DELETE FROM review_observations WHERE raw_page_id = :p AND review_id NOT IN (1, 2)",
            {"p": 1},
            "ix_review_observations_raw_page_id",
        ),
        # the upsert: known reviews of a page
        (
            "SELECT id FROM reviews WHERE site = :s AND key IN ('1', '2')",
            {"s": "mal"},
            "sqlite_autoindex_reviews",
        ),
        # the tags of known reviews
        (
            "SELECT review_id FROM review_tags WHERE review_id IN (1, 2)",
            {},
            "sqlite_autoindex_review_tags_1 (review_id=?)",
        ),
        # one capture is one raw page
        (
            "SELECT id FROM raw_pages WHERE body_sha256 = :b AND final_url = :u "
            "AND fetched_at = :t LIMIT 1",
            {"b": "x", "u": "y", "t": "2026-01-01 00:00:00"},
            "INDEX ix_raw_pages_",
        ),
        # authors by the names they were seen under
        (
            str(
                _BY_NAME.params(site="mal", names=["a", "b"]).compile(
                    dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
                )
            ),
            {},
            "ix_author_names_name",
        ),
        # reparse: a batch's rows, and the version of the pages it read alike
        (
            "SELECT id, body_sha256, records_sha256 FROM raw_pages WHERE id IN (1, 2) ORDER BY id",
            {},
            "INTEGER PRIMARY KEY",
        ),
        (
            "UPDATE raw_pages SET parser_version = :v WHERE id IN (1, 2)",
            {"v": "1"},
            "INTEGER PRIMARY KEY",
        ),
        # reparse: the pages an older parser read, in id order
        (
            "SELECT id FROM raw_pages WHERE (parser_version IS NULL OR parser_version != :v) "
            "AND id > :a ORDER BY id LIMIT 100",
            {"v": "1", "a": 0},
            "INTEGER PRIMARY KEY",
        ),
    ],
)
def test_hot_statements_use_an_index(
    sqlite_url: str, statement: str, params: dict[str, object], index: str
) -> None:
    plan = _plan(sqlite_url, statement, params)
    assert index in plan, plan
    for table in ("reviews", "review_observations", "raw_pages", "authors", "author_names"):
        assert f"SCAN {table}\n" not in plan + "\n", plan


#: The archive's tables that grow with it: no statement of the store may read one whole.
_GROWING = ("reviews", "review_observations", "raw_pages", "raw_bodies", "authors")
_GROWING += ("author_names", "items", "review_tags", "tags")
#: Statements whose scan is bounded or paid once per command, not per page: (a piece
#: of their SQL) → why.
_BOUNDED = {
    # the compression base: the newest pages, read backwards by rowid and stopped at LIMIT
    "FROM raw_pages ORDER BY raw_pages.id DESC\n LIMIT ? OFFSET ?": "bounded by LIMIT",
    # reparse's total for its progress line, once per run
    "SELECT count(*) AS count_1 \nFROM raw_pages \nWHERE 1 = 1": "once per reparse",
}


def test_every_statement_the_store_runs_uses_indexes(sqlite_url: str) -> None:
    """Every SELECT, UPDATE and DELETE that ingest and reparse send to SQLite (first
    captures, re-captures, a renamed author, a new parser version) is planned without
    a scan of a table that grows with the archive.

    INSERTs are left out: their conflict target is a unique index by construction, and
    the child-table scans SQLite lists for them (foreign keys pointing at the new row)
    run only while a foreign-key violation is outstanding, which never happens here.
    """
    from scraper.store.reparse import reparse

    engine = open_engine(sqlite_url)
    sent: set[str] = set()
    listening = [True]

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if listening[0] and statement.lstrip().upper().startswith(
            ("SELECT", "UPDATE", "DELETE", "WITH")
        ):
            sent.add(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        ingest_history(engine, 6)
        listening[0] = False  # the test's own statement: every page read by an old parser
        with engine.begin() as connection:
            connection.execute(sa.update(raw_pages).values(parser_version="0.0.1"))
        listening[0] = True
        reparse(engine, everything=True)
        # Among them the same-name author lookup, whose second authors table is aliased.
        assert len(sent) >= 8, sent
        assert any("authors AS " in sql for sql in sent), sent
        scanned = []
        with engine.connect() as connection:
            for sql in sorted(sent):
                blanks = (None,) * sql.count("?")
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", blanks).all()
                steps = [str(row[-1]).strip() for row in rows]
                bounded = any(mark in sql for mark in _BOUNDED)
                # SQLite names an aliased table by its alias (authors AS other).
                aliases = re.findall(r"\b(\w+) AS (\w+)\b", sql)
                names = set(_GROWING) | {alias for table, alias in aliases if table in _GROWING}
                if not bounded and any(_scans(s, table) for s in steps for table in names):
                    scanned.append(f"{sql}\n" + "\n".join(steps))
        assert not scanned, "\n\n".join(scanned)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
        engine.dispose()


def _scans(step: str, table: str) -> bool:
    return step == f"SCAN {table}" or step.startswith(f"SCAN {table} ")


def _captures(url: str, count: int) -> None:
    engine = open_engine(url)
    try:
        ingest_history(engine, count)
        with engine.begin() as connection:
            connection.execute(sa.update(raw_pages).values(parser_version="0.0.1"))
    finally:
        engine.dispose()


def _archive(url: str) -> list[tuple[object, ...]]:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    sa.text(
                        "SELECT r.key, r.rating_value, r.body_sha256, a.name, o.raw_page_id, "
                        "o.rating_value, o.tags FROM review_observations o "
                        "JOIN reviews r ON r.id = o.review_id JOIN authors a ON a.id = r.author_id "
                        "ORDER BY r.key, o.raw_page_id"
                    )
                )
            ]
    finally:
        engine.dispose()


@pytest.mark.slow  # --jobs 2 starts a process pool
def test_parallel_reparse_stores_what_one_process_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = (f"sqlite:///{tmp_path / name}" for name in ("one.db", "two.db"))
    for url in (one, two):
        _captures(url, 8)
    before = _archive(one)
    assert main(["reparse", "--db", one]) == ExitCode.OK
    assert main(["reparse", "--jobs", "2", "--db", two]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("reparsed 8 pages:") and out[1] == out[0]
    assert _archive(one) == _archive(two) == before
    # Read by this parser now: skipped.
    assert main(["reparse", "--jobs", "2", "--db", two]) == ExitCode.OK
    assert "reparsed 0 pages" in capsys.readouterr().out


def test_a_remembered_same_site_base_is_checked_in_the_database(tmp_path: Path) -> None:
    """The base a site's new URLs are compressed against is remembered per database;
    one the database does not hold (a rolled-back page's, say) is never referenced."""
    from scraper.schema.tables import raw_bodies
    from scraper.store import bodies
    from scraper.store.bodies import load_body

    url = f"sqlite:///{tmp_path / 'bases.db'}"
    body = (HISTORY / "anime-91234-reviews-2026-02.html").read_bytes()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    engine = open_engine(url)
    try:

        def ingest(number: int) -> None:
            page_url = f"https://myanimelist.net/anime/{number}/x/reviews"
            copy = body.replace(b"</body>", f"<!-- {number} --></body>".encode())
            ingest_page(engine, FetchedPage(page_url, page_url, 200, (), copy, at))

        ingest(1)
        key = f"{engine.url!r}\x00https://myanimelist.net"
        bodies._site_bases.put(key, "0" * 64)  # not in this database
        ingest(2)
        ingest(3)  # from the memory now: the real base found for 2
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(raw_bodies.c.sha256, raw_bodies.c.encoding, raw_bodies.c.data)
            ).all()
            plain = [row.sha256 for row in rows if row.encoding == "zstd"]
            assert len(plain) == 1
            for row in rows:
                if row.encoding != "zstd":
                    assert bytes(row.data[:32]).hex() == plain[0]
                assert b"<!-- " in load_body(connection, row.sha256)
    finally:
        engine.dispose()
