"""Shared test fixtures: real databases (SQLite files, a PostgreSQL schema per test)
and the locations of fixture and corpus pages."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"
POSTGRES_ENV = "REVIEWS_TEST_POSTGRES_URL"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def corpus_dir() -> Path:
    """The shared third-party corpus (never committed); skips when absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"no shared corpus at {CORPUS}")
    return CORPUS


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file in the test's own folder."""
    return f"sqlite:///{tmp_path / 'reviews.db'}"


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


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
