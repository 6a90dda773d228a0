"""Shared test fixtures: real databases (SQLite files, a PostgreSQL schema per test),
the locations of fixture and corpus pages, and fetch settings fast enough for tests.

Test modules import the constants (``from conftest import FAST, HISTORY``) and ask for
the fixtures (``engine``, ``db_url``, ``corpus_dir``) by name.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from siteserver import Site, serve
from sqlalchemy.engine import Engine
from standin import StandinServer, StandinSite, serve_standin

from scraper.config import FetchSettings, Timeouts
from scraper.records import FetchedPage

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
#: Saved captures of one review page over the years (2021, 2022 legacy; 2026 current).
HISTORY = FIXTURES / "history"
#: The URL the history captures were saved from.
HISTORY_URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
#: MAL pages we wrote, each beside its expected records (listed in pages.json).
MAL = FIXTURES / "mal"
#: schema.org pages we wrote, each beside its expected records (listed in pages.json).
SCHEMAORG_PAGES = FIXTURES / "schemaorg"


def archive_rows(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite archive *path*, as SQLite stores it (its
    text and bytes, not types), in primary-key order."""
    import sqlite3

    from scraper.schema.tables import metadata

    connection = sqlite3.connect(path)
    try:
        found = {}
        for table in metadata.sorted_tables:
            order = ", ".join(c.name for c in table.primary_key.columns) or "rowid"
            found[table.name] = connection.execute(
                f'SELECT * FROM "{table.name}" ORDER BY {order}'
            ).fetchall()
        return found
    finally:
        connection.close()


def report_said(report: Any) -> tuple[Any, ...] | None:
    """What an IngestReport says, comparable (its error by its text, URL and raw page:
    errors compare by identity)."""
    if report is None:
        return None
    error = report.error
    return (
        report.raw_page_id,
        report.page_kind,
        report.reviews_new,
        report.reviews_updated,
        report.reviews_unchanged,
        report.already_stored,
        report.result,
        (repr(error), error.url, error.raw_page_id) if error is not None else None,
    )


def ingest_history(engine: Engine, count: int) -> None:
    """Store *count* captures of the history pages in turn, a day apart (oldest first)."""
    from scraper.store.ingest import ingest_page

    sources = sorted(HISTORY.glob("*.html"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(count):
        body = sources[number % len(sources)].read_bytes()
        at = start + timedelta(days=number)
        ingest_page(engine, FetchedPage(HISTORY_URL, HISTORY_URL, 200, (), body, at))


POSTGRES_ENV = "REVIEWS_TEST_POSTGRES_URL"
#: The shared third-party corpus (saved real pages, never committed): by default the
#: copy beside the clone, ``../shared/corpus``; ``.ci/run`` sets the variable.
CORPUS_ENV = "REVIEWS_TEST_CORPUS"
CORPUS = Path(os.environ.get(CORPUS_ENV) or REPO.parent / "shared" / "corpus")

#: Fetch settings for a local test server: short timeouts and backoff, three attempts.
#: A read timeout of 0.5 s is far above a loopback answer, far below a "slow" reply.
FAST = FetchSettings(
    timeouts=Timeouts(connect=1.0, read=0.5, write=1.0, pool=1.0),
    backoff_initial=0.02,
    backoff_max=0.1,
    max_attempts=3,
)
#: FAST with deadlines for a whole request and for robots.txt: the hostile-server tests.
HOSTILE = FAST._replace(timeouts=FAST.timeouts._replace(total=1.0, robots=0.6))


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def corpus_dir() -> Path:
    """The shared third-party corpus (never committed); skips when absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"no shared corpus at {CORPUS} (set ${CORPUS_ENV} to its folder)")
    return CORPUS


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite archive at the newest schema revision, migrated once per test session.

    Running the migrations costs about 0.3 s a database (most of it waiting on the
    disk); a copy of this file costs a millisecond.
    """
    from scraper.store.engine import open_engine

    path = tmp_path_factory.mktemp("migrated") / "reviews.db"
    open_engine(f"sqlite:///{path}").dispose()
    # Closing the last connection checkpoints the WAL: the one file holds everything.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """A fresh SQLite archive in the test's own folder, already at the newest revision
    (a copy of ``migrated_sqlite``). A test of what happens before the first migration
    names a file of its own in ``tmp_path``."""
    path = tmp_path / "reviews.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema on the server named by $REVIEWS_TEST_POSTGRES_URL.

    Each test gets its own schema (through ``search_path``), so test runs that share
    the server never see each other's tables; the schema is dropped afterwards.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"${POSTGRES_ENV} is not set: PostgreSQL tests need a server")
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


#: Params for a fixture that runs its tests on both databases. The PostgreSQL twin is
#: in the slow tier: each pays for a schema and its migration (about 0.3 s), and the
#: fast tier has the same assertions on SQLite.
BOTH_DATABASES = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow]),
]


@pytest.fixture(params=BOTH_DATABASES)
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on a SQLite file and once on PostgreSQL (slow tier)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An open engine on a fresh, migrated database: once on SQLite, once on PostgreSQL."""
    from scraper.store.engine import open_engine

    opened = open_engine(db_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``reviews serve`` on the fixture archive, one server for every module that reads
    it (test_serve*.py): the archive is built and the server started once a run."""
    from test_serve_support import fixture_server

    yield from fixture_server(tmp_path_factory)


def pytest_configure(config: pytest.Config) -> None:
    # Keep the compiled test modules (their assertions rewritten) between runs even
    # where PYTHONDONTWRITEBYTECODE is set, as on the development machine: rewriting
    # and compiling them again costs the fast tier about 5 s of its 30.
    sys.dont_write_bytecode = False


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection loaded (every test module and the libraries they import) lives
    # for the whole run: out of the garbage collector's sight, each of its full passes
    # over the heap stops paying for it, which tests that allocate much were spending
    # seconds on. Hypothesis is imported first whatever was collected: on import, its
    # plugins (trio's) check their objects' referrers, and the garbage collector no
    # longer shows frozen ones (a test module importing it later warned, an error here).
    import hypothesis  # noqa: F401

    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every PostgreSQL test, and every test of the served fixture archive, in the
    slow tier: the fast one is SQLite only, in this process.

    A test is a PostgreSQL test when it is marked ``postgres`` or asks, directly or
    through another fixture, for ``postgres_url`` (each pays for a schema of its own).
    A test that asks for ``fixture_site`` talks to a ``reviews serve`` process.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "postgres_url" in fixtures and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
        if item.get_closest_marker("postgres") is not None or "fixture_site" in fixtures:
            item.add_marker(pytest.mark.slow)


#: A test of the fast tier (``pytest -m "not slow"``) slower than this is named at the end.
FAST_TIER_LIMIT = 1.0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """In the fast tier, name the tests that took long enough to belong to the slow one."""
    if "not slow" not in str(terminalreporter.config.getoption("markexpr", "")):
        return
    slow = [
        report
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call" and report.duration > FAST_TIER_LIMIT
    ]
    if slow:
        terminalreporter.section("fast tier: tests to mark @pytest.mark.slow?")
        for report in sorted(slow, key=lambda r: -r.duration):
            terminalreporter.write_line(f"{report.duration:5.2f}s {report.nodeid}")


# --- local sites -----------------------------------------------------------------


#: A plain local site whose robots.txt keeps crawlers out of /private (fetch tests).
@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as running:
        running.robots("User-agent: *\nDisallow: /private\n")
        yield running


#: A stand-in review site with two entries: 3 and 2 listing pages (crawl tests).
@pytest.fixture
def standin() -> StandinSite:
    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=45)  # 3 pages
    site.add_entry("anime", 2, "Quiet_Harbor", "Quiet Harbor", reviews=25)  # 2 pages
    return site


@pytest.fixture
def server(standin: StandinSite) -> Iterator[StandinServer]:
    with serve_standin(standin) as running:
        yield running
